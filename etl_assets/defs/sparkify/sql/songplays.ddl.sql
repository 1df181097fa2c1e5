-- Fact: one row per NextSong event.
create table if not exists sparkify.songplays (
    songplay_id bigint       not null,
    start_time  timestamp    not null,
    user_id     integer      not null,
    level       varchar(8),
    song_id     varchar(32),
    artist_id   varchar(32),
    session_id  integer,
    location    varchar(256),
    user_agent  varchar(512)
)
