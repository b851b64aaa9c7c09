-- The datasets of est_problems: did, name and problem count (qid runs 0..problems-1).
SELECT did, any_value(dataset) AS dataset, max(qid) + 1 AS problems
FROM est_problems
GROUP BY did
ORDER BY did;
