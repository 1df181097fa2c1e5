-- Reference: airline IATA code -> name (from the vendor's airlines.json, a JSON array).
create table if not exists flights.airlines (
    iata_code varchar(8)   not null,
    airline   varchar(256)
)
