-- Whether each group of est_problems has the reward score the weighted stopping rule votes with
-- (score_last, as weighted_vote_last): groups without it get no adaptive_weighted_* cells.
SELECT gid, sum(scored_last) > 0 AS scored
FROM est_problems
GROUP BY gid
ORDER BY gid;
