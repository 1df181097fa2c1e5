-- One row per workbook, store city, month and product family: what each workbook version
-- published (its own rows are replaced by its next version). `sales` picks, per month, the
-- workbook with precedence: monthly (1), then yearly HISTO (2), then yearly BUDGET (3).
create table if not exists darties.workbook_sales (
    source_key         varchar(1024) not null,
    source_kind        varchar(8)    not null,
    source_rank        smallint      not null,
    landed_at          timestamp     not null,
    store_city         varchar(64)   not null,
    month_start        date          not null,
    family             varchar(16)   not null,
    units_objective    bigint,
    units_actual       bigint,
    turnover_objective double precision,
    turnover_actual    double precision,
    margin_objective   double precision,
    margin_actual      double precision
)
