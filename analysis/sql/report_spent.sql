-- What one run spent, per (model, strategy, dataset): sample rows, problems, generated tokens,
-- FLOPs and rows with an error. FLOPs by the FLOPs rule (flops.sql, sweep/inference/flops.py): per grid cell
-- and problem, the prompt once plus every row's completion and re-encoded context, and the reward
-- model's reads; summed over problems. Tree search: tokens from its leaves' completion FLOPs
-- (a leaf carries its share of the tree's), as in summary.sql.
WITH per_problem AS (
    SELECT model, strategy, dataset, config_id, problem_id,
           count(*) AS samples,
           CASE WHEN any_value(budget) IS NULL THEN sum(completion_tokens)::DOUBLE
                ELSE sum(completion_flops) / (2.0 * max(model_params)) END AS tokens,
           problem_policy_flops(prompt_flops, completion_flops, context_flops) AS policy_flops,
           sum(row_reward_flops(reward_flops)) AS reward_flops,
           count(error) AS errors
    FROM samples
    GROUP BY ALL
)
SELECT model, strategy, dataset,
       sum(samples)::BIGINT AS samples,
       count(DISTINCT problem_id) AS problems,
       sum(tokens) AS tokens,
       sum(policy_flops) AS policy_flops,
       sum(reward_flops) AS reward_flops,
       sum(policy_flops) + sum(reward_flops) AS flops,
       sum(errors)::BIGINT AS errors
FROM per_problem
GROUP BY ALL
ORDER BY model, strategy, dataset;
