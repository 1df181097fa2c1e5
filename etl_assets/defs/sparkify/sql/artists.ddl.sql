-- Dimension: one row per artist.
create table if not exists sparkify.artists (
    artist_id varchar(32)  not null,
    name      varchar(512),
    location  varchar(512),
    latitude  double precision,
    longitude double precision
)
