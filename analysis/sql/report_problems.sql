-- Problems per dataset in the run's problem files, with their levels and subjects.
SELECT dataset,
       count(*) AS problems,
       list_sort(list_distinct(list(level))) AS levels,
       count(DISTINCT subject) AS subjects
FROM problems
GROUP BY dataset
ORDER BY dataset;
