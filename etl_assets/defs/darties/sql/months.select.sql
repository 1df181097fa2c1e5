select month_start,
       cast(extract(year from month_start) as smallint) as year,
       cast(floor((extract(month from month_start) - 1) / 3) + 1 as smallint) as quarter,
       cast(extract(month from month_start) as smallint) as month,
       case cast(extract(month from month_start) as smallint)
           when 1 then 'Janvier' when 2 then 'Février' when 3 then 'Mars'
           when 4 then 'Avril' when 5 then 'Mai' when 6 then 'Juin'
           when 7 then 'Juillet' when 8 then 'Août' when 9 then 'Septembre'
           when 10 then 'Octobre' when 11 then 'Novembre' else 'Décembre'
       end as label_fr
from (select distinct month_start from darties.workbook_sales) covered
