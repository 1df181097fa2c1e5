-- Dimension: one row per distinct songplay start time, broken into calendar units.
create table if not exists sparkify."time" (
    start_time timestamp not null,
    hour       integer,
    day        integer,
    week       integer,
    month      integer,
    year       integer,
    weekday    integer
)
