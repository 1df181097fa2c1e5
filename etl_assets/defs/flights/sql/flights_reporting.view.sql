-- One row per flight with its date, weekday name, airline name and both airports' places.
with flights as (
    select * from flights.flights
),

airlines as (
    select iata_code, airline as airline_name from flights.airlines
),

airports as (
    select iata_code, airport, city, state, latitude, longitude from flights.airports
),

final as (
    select
        to_date(
            cast(f.year as varchar(4)) || '-' || cast(f.month as varchar(2)) || '-'
            || cast(f.day as varchar(2)),
            'YYYY-MM-DD'
        ) as flight_date,
        case f.day_of_week
            when 1 then 'Monday' when 2 then 'Tuesday' when 3 then 'Wednesday'
            when 4 then 'Thursday' when 5 then 'Friday' when 6 then 'Saturday'
            when 7 then 'Sunday'
        end as weekday_name,
        f.airline,
        al.airline_name,
        f.flight_number,
        f.tail_number,
        f.origin_airport,
        o.airport as origin_airport_name,
        o.city as origin_city,
        o.state as origin_state,
        o.latitude as origin_latitude,
        o.longitude as origin_longitude,
        f.destination_airport,
        d.airport as destination_airport_name,
        d.city as destination_city,
        d.state as destination_state,
        d.latitude as destination_latitude,
        d.longitude as destination_longitude,
        f.scheduled_departure,
        f.departure_time,
        f.departure_delay,
        f.scheduled_arrival,
        f.arrival_time,
        f.arrival_delay,
        f.air_time,
        f.distance,
        f.diverted,
        f.cancelled,
        f.cancellation_reason,
        f.air_system_delay,
        f.security_delay,
        f.airline_delay,
        f.late_aircraft_delay,
        f.weather_delay
    from flights as f
    left join airlines as al on al.iata_code = f.airline
    left join airports as o on o.iata_code = f.origin_airport
    left join airports as d on d.iata_code = f.destination_airport
)

select * from final
