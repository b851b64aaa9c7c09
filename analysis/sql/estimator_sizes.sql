-- The problems of the groups $gids in pid order, with their sample counts: where each problem's
-- rows start in estimator_samples.sql's result, and which problems share a sample count.
SELECT pid, gid, dataset, samples
FROM est_problems
WHERE list_contains($gids, gid)
ORDER BY pid;
