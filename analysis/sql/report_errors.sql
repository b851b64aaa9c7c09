-- Rows of one run's $table that carry an error, at most $limit of them; total: how many there
-- are in all. $table: samples (a failed request is a row, never a dropped one), each row named by
-- sample_index, or nodes (tree search), each named by node_id: $index, an anchored regex.
SELECT model, strategy, dataset, problem_id, COLUMNS($index), error,
       count(*) OVER () AS total
FROM query_table($table)
WHERE error IS NOT NULL
ORDER BY model, strategy, dataset, problem_id, #5  -- #5: the $index column
LIMIT $limit;
