-- The FLOPs rule of sweep/inference/flops.py as DuckDB macros, created once on a connection
-- (analysis.views.connect, and analysis.estimators.create_flops_macros) for every SQL reader;
-- not TEMP, so the read-only sandbox of user queries keeps them too. A problem answered from some
-- of its sample rows costs
--   policy: its prompt once (every row carries its request's prompt_flops) plus, for every row,
--           row_policy_flops(completion_flops, context_flops);
--   reward: for every row, row_reward_flops(reward_flops);
--   flops:  total_flops(policy, reward, include_reward_flops).
-- problem_policy_flops is that policy sum over the rows of one GROUP BY group.
-- context_flops (tree search: re-encoded path context) is 0 where older files lack it.
CREATE OR REPLACE MACRO row_policy_flops(completion_flops, context_flops) AS
    completion_flops + coalesce(context_flops, 0::DOUBLE);
CREATE OR REPLACE MACRO row_reward_flops(reward_flops) AS reward_flops;
CREATE OR REPLACE MACRO total_flops(policy_flops, reward_flops, include_reward_flops) AS
    policy_flops + CASE WHEN include_reward_flops THEN reward_flops ELSE 0::DOUBLE END;
CREATE OR REPLACE MACRO problem_policy_flops(prompt_flops, completion_flops, context_flops) AS
    max(prompt_flops) + sum(row_policy_flops(completion_flops, context_flops));
