-- Expected samples spent per problem by each adaptive cell: the mean over its problems of the
-- mean over replayed orderings (est_adaptive).
SELECT cell, avg(samples) AS samples_per_problem
FROM est_adaptive
GROUP BY cell;
