-- Sample rows of one run that carry an error (a failed request is a row, never a dropped one),
-- at most $limit of them; total: how many there are in all.
SELECT model, strategy, dataset, problem_id, sample_index, error,
       count(*) OVER () AS total
FROM samples
WHERE error IS NOT NULL
ORDER BY model, strategy, dataset, problem_id, sample_index
LIMIT $limit;
