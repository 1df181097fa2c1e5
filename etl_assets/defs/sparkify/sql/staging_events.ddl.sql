-- Raw app events, one row per log line; columns in the order of the JSONPaths file.
create table if not exists sparkify.staging_events (
    artist          varchar(256),
    auth            varchar(32),
    first_name      varchar(128),
    gender          varchar(8),
    item_in_session integer,
    last_name       varchar(128),
    length          double precision,
    level           varchar(8),
    location        varchar(256),
    method          varchar(8),
    page            varchar(32),
    registration    double precision,
    session_id      integer,
    song            varchar(256),
    status          integer,
    ts              bigint,
    user_agent      varchar(512),
    user_id         varchar(16)
)
