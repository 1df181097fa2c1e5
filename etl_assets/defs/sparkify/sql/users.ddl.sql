-- Dimension: one row per user who played a song, with the level of their latest play.
create table if not exists sparkify.users (
    user_id    integer      not null,
    first_name varchar(128),
    last_name  varchar(128),
    gender     varchar(8),
    level      varchar(8)
)
