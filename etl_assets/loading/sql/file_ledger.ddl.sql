-- One row per object version a load touched: what was loaded where, or why it was refused.
create table if not exists etl_audit.file_ledger (
    load_id        varchar(36)   not null,
    bucket         varchar(255)  not null,
    object_key     varchar(1024) not null,
    etag           varchar(128)  not null,
    size_bytes     bigint,
    last_modified  timestamp,
    target_table   varchar(255)  not null,
    partition_key  varchar(64),
    status         varchar(16)   not null,
    records        bigint,
    rows_loaded    bigint,
    error          varchar(4096),
    run_id         varchar(64),
    recorded_at    timestamp     not null
)
