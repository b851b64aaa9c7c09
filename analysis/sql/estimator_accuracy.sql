-- Accuracy and cost per (model, dataset, strategy, method, n): the means over problems of
-- est_per_problem (estimator_per_problem.sql), with the cell each row came from. flops adds
-- the reward FLOPs when $include_reward_flops (total_flops, flops.sql). Intervals come from
-- the bootstrap over problems (analysis/bootstrap.py), not from here.
WITH curves AS (
    SELECT cell,
           avg(estimate) AS accuracy,
           count(*) AS problems,
           avg(tokens) AS tokens_per_problem,
           avg(policy_flops) AS policy_flops_per_problem,
           avg(reward_flops) AS reward_flops_per_problem
    FROM est_per_problem
    GROUP BY cell
),
names AS (
    SELECT gid, any_value(model) AS model, max(model_params) AS model_params,
           any_value(dataset) AS dataset, any_value(strategy) AS strategy
    FROM est_problems
    GROUP BY gid
)
SELECT nm.model, nm.model_params, nm.dataset, nm.strategy, c.method, c.n::BIGINT AS n,
       cu.accuracy,
       cu.problems,
       cu.tokens_per_problem,
       cu.policy_flops_per_problem,
       cu.reward_flops_per_problem,
       total_flops(cu.policy_flops_per_problem, cu.reward_flops_per_problem, $include_reward_flops)
           AS flops_per_problem,
       c.cell
FROM curves cu
JOIN est_cells c USING (cell)
JOIN names nm USING (gid)
ORDER BY nm.model, nm.dataset, nm.strategy, c.method, c.n;
