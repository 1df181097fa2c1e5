select st.region, s.month_start, s.family,
       sum(s.units_objective) as units_objective,
       sum(s.units_actual) as units_actual,
       sum(s.turnover_objective) as turnover_objective,
       sum(s.turnover_actual) as turnover_actual,
       sum(s.margin_objective) as margin_objective,
       sum(s.margin_actual) as margin_actual,
       cast(sum(s.units_actual) as double precision)
           / nullif(sum(s.units_objective), 0) as units_attainment,
       sum(s.turnover_actual) / nullif(sum(s.turnover_objective), 0) as turnover_attainment,
       sum(s.margin_actual) / nullif(sum(s.margin_objective), 0) as margin_attainment
from darties.sales s
join darties.stores st on st.store_city = s.store_city
group by st.region, s.month_start, s.family
