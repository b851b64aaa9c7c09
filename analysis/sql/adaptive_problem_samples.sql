-- Expected samples spent on each problem by each adaptive cell, named as the per-problem rows
-- (estimator_problem_rows.sql) are.
SELECT p.model, p.dataset, p.strategy, c.method, c.n::BIGINT AS n, p.problem_id, a.samples
FROM est_adaptive a
JOIN est_cells c USING (cell)
JOIN est_problems p USING (pid);
