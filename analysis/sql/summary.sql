-- Accuracy, tokens, FLOPs and latency per (model, strategy, dataset, n) for the launcher's table.
-- Majority voting at n uses each problem's first n samples (samples are i.i.d., so these are
-- an unbiased n-subset); unanswered samples do not vote; ties go to the answer seen first.
-- FLOPs per problem by the FLOPs rule (flops.sql, sweep/inference/flops.py; the connection needs its
-- macros): the prompt once, plus every picked row's completion and re-encoded context FLOPs;
-- reward FLOPs where the method needs the reward model: majority vote reads no scores, so only
-- a tree search's (its search read them). flops_per_problem counts both, as the estimators do.
-- Tree search: n is the budget; its leaves vote, and carry shares that sum to the search's cost.
-- $shard_ids: shards of the current grid; $strategies/$methods/$ns: the evaluated grid, zipped.
WITH s AS (
    SELECT * FROM samples WHERE list_contains($shard_ids, shard_id)
),
grid AS (
    SELECT unnest($strategies) AS strategy, unnest($methods) AS method, unnest($ns) AS n
),
picked AS (  -- the samples each (strategy, n) of the grid evaluates
    SELECT s.*, g.method, g.n
    FROM s JOIN grid g ON s.strategy = g.strategy
    WHERE CASE WHEN s.budget IS NULL THEN s.sample_index < g.n ELSE s.budget = g.n END
),
votes AS (
    SELECT model, strategy, dataset, problem_id, n, answer_key,
           count(*) AS votes, bool_or(correct) AS correct, min(sample_index) AS first_seen
    FROM picked
    WHERE answer_key IS NOT NULL
    GROUP BY ALL
),
winners AS (
    SELECT * FROM votes
    QUALIFY row_number() OVER (
        PARTITION BY model, strategy, dataset, problem_id, n ORDER BY votes DESC, first_seen
    ) = 1
),
per_problem AS (
    SELECT model, strategy, method, dataset, problem_id, n,
           CASE WHEN any_value(budget) IS NULL THEN sum(completion_tokens)
                ELSE sum(completion_flops) / (2.0 * max(model_params)) END AS tokens,
           problem_policy_flops(prompt_flops, completion_flops, context_flops) AS policy_flops,
           CASE WHEN any_value(budget) IS NULL THEN 0.0
                ELSE sum(row_reward_flops(reward_flops)) END AS reward_flops,
           max(latency_s) AS latency_s,
           count(error) AS errors
    FROM picked
    GROUP BY ALL
)
SELECT p.model, p.strategy, p.method, p.dataset, p.n,
       count(*) AS problems,
       avg(coalesce(w.correct, false)::INTEGER) AS accuracy,
       avg(p.tokens) AS tokens_per_problem,
       avg(p.policy_flops) AS policy_flops_per_problem,
       avg(p.reward_flops) AS reward_flops_per_problem,
       total_flops(avg(p.policy_flops), avg(p.reward_flops), true) AS flops_per_problem,
       avg(p.latency_s) AS latency_s,
       sum(p.errors) AS errors
FROM per_problem p
LEFT JOIN winners w USING (model, strategy, dataset, problem_id, n)
GROUP BY ALL
ORDER BY p.model, p.dataset, p.strategy, p.n;
