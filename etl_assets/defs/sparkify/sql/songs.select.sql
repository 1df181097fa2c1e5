-- One row per song id.
with ranked as (
    select
        song_id,
        title,
        artist_id,
        year,
        duration,
        row_number() over (partition by song_id order by title, year) as pick
    from sparkify.staging_songs
    where song_id is not null
)

select song_id, title, artist_id, year, duration
from ranked
where pick = 1
