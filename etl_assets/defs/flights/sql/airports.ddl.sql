-- Reference: airport IATA code -> name and place (from the vendor's airports.csv).
create table if not exists flights.airports (
    iata_code varchar(8)   not null,
    airport   varchar(256),
    city      varchar(128),
    state     varchar(8),
    country   varchar(64),
    latitude  double precision,
    longitude double precision
)
