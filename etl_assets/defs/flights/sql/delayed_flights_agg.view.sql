-- Flights not cancelled that arrived late, per date, airline and route, with totals and means.
with delayed as (
    select *
    from flights.flights_reporting
    where cancelled = 0 and arrival_delay > 0
)

select
    flight_date,
    airline,
    airline_name,
    origin_airport,
    origin_airport_name,
    destination_airport,
    destination_airport_name,
    count(*) as flights,
    sum(air_time) as total_air_time,
    avg(cast(air_time as double precision)) as avg_air_time,
    sum(distance) as total_distance,
    avg(cast(distance as double precision)) as avg_distance,
    sum(arrival_delay) as total_arrival_delay,
    avg(cast(arrival_delay as double precision)) as avg_arrival_delay,
    sum(air_system_delay) as total_air_system_delay,
    avg(cast(air_system_delay as double precision)) as avg_air_system_delay,
    sum(security_delay) as total_security_delay,
    avg(cast(security_delay as double precision)) as avg_security_delay,
    sum(airline_delay) as total_airline_delay,
    avg(cast(airline_delay as double precision)) as avg_airline_delay,
    sum(late_aircraft_delay) as total_late_aircraft_delay,
    avg(cast(late_aircraft_delay as double precision)) as avg_late_aircraft_delay,
    sum(weather_delay) as total_weather_delay,
    avg(cast(weather_delay as double precision)) as avg_weather_delay
from delayed
group by
    flight_date, airline, airline_name, origin_airport, origin_airport_name,
    destination_airport, destination_airport_name
