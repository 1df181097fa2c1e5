-- Dimension: the product families the workbooks report on.
create table if not exists darties.product_families (
    family varchar(16) not null,
    label  varchar(32) not null
)
