-- Dimension: one row per song.
create table if not exists sparkify.songs (
    song_id   varchar(32)  not null,
    title     varchar(512),
    artist_id varchar(32),
    year      integer,
    duration  double precision
)
