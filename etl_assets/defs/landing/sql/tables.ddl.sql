-- The landing zone's registry: the contract each landing table was declared with (its last
-- applied schema file), written in the same transaction as the table's DDL.
create table if not exists landing.tables (
    db           varchar(63)    not null,
    table_name   varchar(63)    not null,
    contract     varchar(65535) not null,
    schema_key   varchar(1024)  not null,
    schema_etag  varchar(128)   not null,
    updated_at   timestamp      not null
)
