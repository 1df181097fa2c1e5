-- Dimension: one row per store city, from the most recently landed workbook's `darties` sheet.
create table if not exists darties.stores (
    store_city         varchar(64) not null,
    brand              varchar(64),
    advertising        double precision,
    region             varchar(64),
    location           varchar(64),
    cash_registers     integer,
    population         bigint,
    blue_collar_rate   double precision,
    white_collar_rate  double precision,
    inactive_rate      double precision,
    under_25_rate      double precision,
    from_25_to_35_rate double precision,
    over_35_rate       double precision
)
