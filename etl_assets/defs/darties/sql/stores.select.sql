select store_city, brand, advertising, region, location, cash_registers, population,
       blue_collar_rate, white_collar_rate, inactive_rate, under_25_rate, from_25_to_35_rate,
       over_35_rate
from (
    select w.*, dense_rank() over (order by landed_at desc, source_key desc) as recency
    from darties.workbook_stores w
) ranked
where recency = 1
