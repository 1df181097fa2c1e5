-- One row per user among NextSong events, with the level of their latest event.
with plays as (
    select
        cast(user_id as integer) as user_id,
        first_name,
        last_name,
        gender,
        level,
        row_number() over (
            partition by user_id order by ts desc, item_in_session desc
        ) as recency
    from sparkify.staging_events
    where page = 'NextSong' and user_id <> ''
)

select user_id, first_name, last_name, gender, level
from plays
where recency = 1
