-- Dimension: one row per month the workbooks cover.
create table if not exists darties.months (
    month_start date        not null,
    year        smallint    not null,
    quarter     smallint    not null,
    month       smallint    not null,
    label_fr    varchar(16) not null
)
