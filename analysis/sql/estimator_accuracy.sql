-- Accuracy and cost per (model, dataset, strategy, method, n) from est_problems and est_hits.
-- A problem counts at n only if it has at least n samples. Per problem the estimate is:
--   greedy (greedy groups, n = 1): whether sample 0 is right;
--   voting estimators: the fraction of the $resamples subsets the estimator got right (est_hits);
--   pass_at_n: 1 - C(N - c, n) / C(N, n), the unbiased estimator (Chen et al., 2021), via lgamma.
-- accuracy is the mean over problems; ci_low/ci_high a 95% normal interval over problems
-- (mean ± 1.96 · sd / sqrt(problems), clipped to [0, 1]; null with one problem). It is the
-- uncertainty from the finite problem set; the resampling error is much smaller and left out.
-- Cost of n samples of a problem: n × its mean completion tokens; policy FLOPs: the prompt once
-- (max prompt_flops) + n × mean completion_flops; reward FLOPs: n × mean reward_flops, only for
-- estimators that read reward scores (weighted_vote_*, best_of_n_*), otherwise 0; flops adds
-- the reward FLOPs when $include_reward_flops.
-- Tree search (tree): n is the budget and every estimator sees all of the search's leaves; the
-- cost is the whole search (tokens it generated, every context it encoded, and its reward-model
-- reads, charged to every method since the search itself needed the PRM).
-- $grid_gids/$grid_ns (zipped): each non-greedy group's n values; $greedy_gids: greedy groups.
WITH grid AS (
    SELECT unnest($grid_gids) AS gid, unnest($grid_ns) AS n
),
methods AS (  -- voting estimators and the reward score each needs
    SELECT * FROM (VALUES
        ('majority_vote', NULL),
        ('weighted_vote_last', 'last'), ('weighted_vote_min', 'min'),
        ('weighted_vote_prod', 'prod'), ('weighted_vote_mean', 'mean'),
        ('best_of_n_last', 'last'), ('best_of_n_min', 'min'),
        ('best_of_n_prod', 'prod'), ('best_of_n_mean', 'mean')
    ) AS m(method, score)
),
groups AS (
    SELECT gid,
           sum(scored_last) > 0 AS has_last, sum(scored_min) > 0 AS has_min,
           sum(scored_prod) > 0 AS has_prod, sum(scored_mean) > 0 AS has_mean
    FROM est_problems
    GROUP BY gid
),
cells AS (  -- every problem at every n of its group it has enough samples for
    SELECT p.*, g.n
    FROM est_problems p
    JOIN grid g USING (gid)
    WHERE p.samples >= g.n OR p.tree
),
hits AS (
    UNPIVOT est_hits
    ON majority_vote, weighted_vote_last, weighted_vote_min, weighted_vote_prod, weighted_vote_mean,
       best_of_n_last, best_of_n_min, best_of_n_prod, best_of_n_mean
    INTO NAME method VALUE hits
),
voting AS (
    SELECT c.gid, c.pid, m.method, c.n,
           coalesce(h.hits, 0) / $resamples AS estimate,
           CASE WHEN c.tree THEN c.tree_tokens ELSE c.n * c.tokens_mean END AS tokens,
           CASE WHEN c.tree THEN c.prompt_flops + c.completion_flops_sum
                ELSE c.prompt_flops + c.n * c.completion_flops_mean END AS policy_flops,
           CASE WHEN c.tree THEN c.reward_flops_sum
                WHEN m.score IS NULL THEN 0.0 ELSE c.n * c.reward_flops_mean END AS reward_flops
    FROM cells c
    JOIN groups gr USING (gid)
    CROSS JOIN methods m
    LEFT JOIN hits h ON h.pid = c.pid AND h.n = c.n AND h.method = m.method
    WHERE CASE m.score
        WHEN 'last' THEN gr.has_last WHEN 'min' THEN gr.has_min
        WHEN 'prod' THEN gr.has_prod WHEN 'mean' THEN gr.has_mean
        ELSE true END
),
pass_at_n AS (  -- a tree search: whether any of its leaves is right
    SELECT gid, pid, 'pass_at_n' AS method, n,
           CASE
               WHEN correct = 0 THEN 0.0
               WHEN tree OR samples - correct < n THEN 1.0
               ELSE 1.0 - exp(
                   lgamma(samples - correct + 1) - lgamma(samples - correct - n + 1)
                   - lgamma(samples + 1) + lgamma(samples - n + 1)
               )
           END AS estimate,
           CASE WHEN tree THEN tree_tokens ELSE n * tokens_mean END AS tokens,
           CASE WHEN tree THEN prompt_flops + completion_flops_sum
                ELSE prompt_flops + n * completion_flops_mean END AS policy_flops,
           CASE WHEN tree THEN reward_flops_sum ELSE 0.0 END AS reward_flops
    FROM cells
),
greedy AS (
    SELECT gid, pid, 'greedy' AS method, 1 AS n,
           first_correct::DOUBLE AS estimate,
           first_tokens::DOUBLE AS tokens,
           first_policy_flops AS policy_flops,
           0.0 AS reward_flops
    FROM est_problems
    WHERE list_contains($greedy_gids, gid)
),
per_problem AS (
    SELECT * FROM voting
    UNION ALL SELECT * FROM pass_at_n
    UNION ALL SELECT * FROM greedy
),
curves AS (
    SELECT gid, method, n,
           avg(estimate) AS accuracy,
           1.96 * stddev_samp(estimate) / sqrt(count(*)) AS half_width,
           count(*) AS problems,
           avg(tokens) AS tokens_per_problem,
           avg(policy_flops) AS policy_flops_per_problem,
           avg(reward_flops) AS reward_flops_per_problem
    FROM per_problem
    GROUP BY gid, method, n
),
names AS (
    SELECT gid, any_value(model) AS model, max(model_params) AS model_params,
           any_value(dataset) AS dataset, any_value(strategy) AS strategy
    FROM est_problems
    GROUP BY gid
)
SELECT nm.model, nm.model_params, nm.dataset, nm.strategy, c.method, c.n::BIGINT AS n,
       c.accuracy,
       greatest(c.accuracy - c.half_width, 0.0) AS ci_low,
       least(c.accuracy + c.half_width, 1.0) AS ci_high,
       c.problems,
       c.tokens_per_problem,
       c.policy_flops_per_problem,
       c.reward_flops_per_problem,
       c.policy_flops_per_problem
           + CASE WHEN $include_reward_flops THEN c.reward_flops_per_problem ELSE 0.0 END AS flops_per_problem
FROM curves c
JOIN names nm USING (gid)
ORDER BY nm.model, nm.dataset, nm.strategy, c.method, c.n;
