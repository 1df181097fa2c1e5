-- One row per NextSong event; song and artist matched on title, artist name and duration.
with next_songs as (
    select *
    from sparkify.staging_events
    where page = 'NextSong'
),

song_catalog as (
    select
        song_id,
        artist_id,
        title,
        artist_name,
        duration,
        row_number() over (
            partition by title, artist_name, duration order by song_id
        ) as match_rank
    from sparkify.staging_songs
),

final as (
    select
        row_number() over (
            order by e.ts, e.session_id, e.item_in_session, e.user_id
        ) as songplay_id,
        timestamp 'epoch' + e.ts / 1000.0 * interval '1 second' as start_time,
        cast(nullif(e.user_id, '') as integer) as user_id,
        e.level,
        s.song_id,
        s.artist_id,
        e.session_id,
        e.location,
        e.user_agent
    from next_songs as e
    left join song_catalog as s
        on e.song = s.title
        and e.artist = s.artist_name
        and e.length = s.duration
        and s.match_rank = 1
)

select * from final
