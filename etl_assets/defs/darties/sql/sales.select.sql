-- Per month, every row comes from ONE workbook: a monthly workbook is authoritative for its
-- month; a yearly HISTO supplies the months no monthly covers, then a BUDGET; among
-- workbooks of one kind the most recently landed wins.
select s.store_city, s.month_start, s.family,
       s.units_objective, s.units_actual, s.turnover_objective, s.turnover_actual,
       s.margin_objective, s.margin_actual, s.source_key
from darties.workbook_sales s
join (
    select source_key, month_start,
           row_number() over (
               partition by month_start order by source_rank, landed_at desc, source_key desc
           ) as pick
    from (
        select distinct source_key, month_start, source_rank, landed_at
        from darties.workbook_sales
    ) workbooks
) chosen on chosen.source_key = s.source_key and chosen.month_start = s.month_start
where chosen.pick = 1
