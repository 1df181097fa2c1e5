-- Fact: one row per store city, month and product family, objectives and actuals.
create table if not exists darties.sales (
    store_city         varchar(64)   not null,
    month_start        date          not null,
    family             varchar(16)   not null,
    units_objective    bigint,
    units_actual       bigint,
    turnover_objective double precision,
    turnover_actual    double precision,
    margin_objective   double precision,
    margin_actual      double precision,
    source_key         varchar(1024) not null
)
