-- The estimators' per-problem estimates (temporary): one row per (cell, problem), for every
-- problem of the cell's group with at least n samples (a tree search: all, at n = its budget).
--   greedy: whether sample 0 is right;
--   voting estimators: the fraction of the $resamples subsets the estimator got right (est_hits);
--   pass_at_n: 1 - C(N - c, n) / C(N, n), the unbiased estimator (Chen et al., 2021), via lgamma;
--     a tree search: whether any of its leaves is right.
-- Cost, by the FLOPs rule (flops.sql): the prompt once plus k rows' policy FLOPs, k = n (the
-- expected cost of n samples: n × the per-row mean) or, for a tree search, all its leaves (the
-- whole search); reward FLOPs of the same k rows where the cell pays for the reward model.
-- Greedy: sample 0 alone. tokens: generated tokens (a tree search: every node's).
CREATE OR REPLACE TEMP TABLE est_per_problem AS
WITH hits AS (
    UNPIVOT est_hits
    ON majority_vote, weighted_vote_last, weighted_vote_min, weighted_vote_prod, weighted_vote_mean,
       best_of_n_last, best_of_n_min, best_of_n_prod, best_of_n_mean
    INTO NAME method VALUE hits
),
at_n AS (
    SELECT c.cell, c.method, c.n, c.pays_reward, p.*,
           CASE WHEN p.tree THEN p.samples ELSE c.n END AS k
    FROM est_cells c
    JOIN est_problems p USING (gid)
    WHERE p.samples >= c.n OR p.tree
)
SELECT a.cell, a.pid,
       CASE
           WHEN a.method = 'greedy' THEN a.first_correct::DOUBLE
           WHEN a.method <> 'pass_at_n' THEN coalesce(h.hits, 0) / $resamples
           WHEN a.correct = 0 THEN 0.0
           WHEN a.tree OR a.samples - a.correct < a.n THEN 1.0
           ELSE 1.0 - exp(
               lgamma(a.samples - a.correct + 1) - lgamma(a.samples - a.correct - a.n + 1)
               - lgamma(a.samples + 1) + lgamma(a.samples - a.n + 1)
           )
       END AS estimate,
       CASE
           WHEN a.method = 'greedy' THEN a.first_tokens::DOUBLE
           WHEN a.tree THEN a.tree_tokens
           ELSE a.n * a.tokens_mean
       END AS tokens,
       a.prompt_flops + CASE
           WHEN a.method = 'greedy' THEN a.first_policy_flops
           ELSE a.k * a.policy_flops_mean
       END AS policy_flops,
       CASE WHEN a.pays_reward THEN a.k * a.reward_flops_mean ELSE 0.0 END AS reward_flops
FROM at_n a
LEFT JOIN hits h ON h.pid = a.pid AND h.n = a.n AND h.method = a.method;
