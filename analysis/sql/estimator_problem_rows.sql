-- The per-problem estimates with their names: one row per (model, dataset, strategy, method, n,
-- problem), costs as in estimator_per_problem.sql; flops adds the reward FLOPs when
-- $include_reward_flops.
SELECT p.model, p.model_params, p.dataset, p.strategy, c.method, c.n::BIGINT AS n, p.problem_id,
       e.estimate, e.tokens, e.policy_flops, e.reward_flops,
       total_flops(e.policy_flops, e.reward_flops, $include_reward_flops) AS flops
FROM est_per_problem e
JOIN est_cells c USING (cell)
JOIN est_problems p USING (pid)
ORDER BY p.model, p.dataset, p.strategy, c.method, c.n, p.problem_id;
