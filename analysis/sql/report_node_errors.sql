-- Tree-search nodes of one run that carry an error, at most $limit; total: how many in all.
SELECT model, strategy, dataset, problem_id, node_id, error,
       count(*) OVER () AS total
FROM nodes
WHERE error IS NOT NULL
ORDER BY model, strategy, dataset, problem_id, node_id
LIMIT $limit;
