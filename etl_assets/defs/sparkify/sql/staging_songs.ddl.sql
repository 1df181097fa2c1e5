-- Raw song metadata, one row per song file record; column names = JSON keys ('auto').
create table if not exists sparkify.staging_songs (
    num_songs        integer,
    artist_id        varchar(32),
    artist_latitude  double precision,
    artist_longitude double precision,
    artist_location  varchar(512),
    artist_name      varchar(512),
    song_id          varchar(32),
    title            varchar(512),
    duration         double precision,
    year             integer
)
