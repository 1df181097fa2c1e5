select family,
       case family
           when 'Fours' then 'Ovens'
           when 'Hifi' then 'Hi-fi'
           when 'Magneto' then 'Video recorders'
           else family
       end as label
from (select distinct family from darties.workbook_sales) families
