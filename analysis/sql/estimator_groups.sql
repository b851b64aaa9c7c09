-- One row per (model, strategy, dataset) group of est_problems: its largest sample count n_max
-- and whether it is greedy (every sample at temperature 0, or one sample per problem: only
-- sample 0 is evaluated, at n = 1).
SELECT gid, model, strategy, dataset,
       count(*) AS problems,
       max(samples) AS n_max,
       max(max_temperature) = 0 OR max(samples) = 1 AS greedy
FROM est_problems
GROUP BY gid, model, strategy, dataset
ORDER BY gid;
