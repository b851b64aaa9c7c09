-- One row per (model, strategy, dataset, budget) group of est_problems: its largest sample count
-- n_max, whether it is a tree search (budget > 0: voting runs over all of a search's leaves at
-- n = budget) and whether it is greedy (flat, and every sample at temperature 0 or one sample per
-- problem: only sample 0 is evaluated, at n = 1).
SELECT gid, model, strategy, dataset, budget,
       count(*) AS problems,
       max(samples) AS n_max,
       any_value(tree) AS tree,
       NOT any_value(tree) AND (max(max_temperature) = 0 OR max(samples) = 1) AS greedy
FROM est_problems
GROUP BY gid, model, strategy, dataset, budget
ORDER BY gid;
