-- Samples that appear more than once in $files (the files one reader reads), with the files
-- holding them: a run's grid never writes one sample twice, so any row here is an error.
-- A sample is (model, strategy, settings, dataset, problem, sample index); the budget is part
-- of a tree search's settings.
SELECT model, strategy, config_id, dataset, problem_id, sample_index,
       count(*) AS copies,
       list(DISTINCT filename ORDER BY filename) AS files
FROM read_parquet($files, filename = true, hive_partitioning = false, union_by_name = true)
GROUP BY ALL
HAVING count(*) > 1
ORDER BY ALL
LIMIT 5;
