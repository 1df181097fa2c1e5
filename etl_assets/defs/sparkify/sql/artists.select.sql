-- One row per artist id; an artist with several song files keeps its first name.
with ranked as (
    select
        artist_id,
        artist_name,
        artist_location,
        artist_latitude,
        artist_longitude,
        row_number() over (
            partition by artist_id order by artist_name, artist_location
        ) as pick
    from sparkify.staging_songs
    where artist_id is not null
)

select
    artist_id,
    artist_name as name,
    artist_location as location,
    artist_latitude as latitude,
    artist_longitude as longitude
from ranked
where pick = 1
