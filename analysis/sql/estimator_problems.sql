-- The estimators' per-problem table (temporary, on the caller's connection): one row per
-- (model, strategy, dataset, budget, problem) with dense ids and what the closed-form estimators
-- need. budget: the tree search's budget, 0 for flat strategies (one group per budget: each is
-- its own search). gid numbers (model, strategy, dataset, budget) groups; pid numbers problems
-- across all groups in sorted order (estimator_samples.sql returns samples in that order); did
-- numbers datasets and qid a dataset's problems by problem_id, shared by every group of the
-- dataset (the bootstrap draws problems by qid, so all groups of a dataset are paired).
-- samples/correct: N and c of pass@n; *_mean: per-sample means (the expected cost of n samples
-- is n times them); costs follow the FLOPs rule (flops.sql, sweep/inference/flops.py): prompt_flops once
-- per problem (every row carries its request's prompt), each row's policy and reward FLOPs;
-- tree_tokens: the tokens a tree search generated (completion FLOPs / 2N, exact since they are
-- 2N per token); first_*: sample 0 (the lowest sample_index), which is what greedy decoding
-- reports; scored_*: samples with that reward score, so estimators only appear where one exists.
CREATE OR REPLACE TEMP TABLE est_problems AS
WITH per_problem AS (
    SELECT model, strategy, dataset, coalesce(budget, 0) AS budget, problem_id,
           max(model_params) AS model_params,
           coalesce(budget, 0) > 0 AS tree,
           count(*) AS samples,
           count_if(correct) AS correct,
           max(temperature) AS max_temperature,
           avg(completion_tokens) AS tokens_mean,
           max(prompt_flops) AS prompt_flops,
           avg(row_policy_flops(completion_flops, context_flops)) AS policy_flops_mean,
           avg(row_reward_flops(reward_flops)) AS reward_flops_mean,
           sum(completion_flops) / (2.0 * max(model_params)) AS tree_tokens,
           arg_min(correct, sample_index) AS first_correct,
           arg_min(completion_tokens, sample_index) AS first_tokens,
           arg_min(row_policy_flops(completion_flops, context_flops), sample_index) AS first_policy_flops,
           count(score_last) AS scored_last,
           count(score_min) AS scored_min,
           count(score_prod) AS scored_prod,
           count(score_mean) AS scored_mean
    FROM samples
    GROUP BY model, strategy, dataset, coalesce(budget, 0), problem_id
)
SELECT dense_rank() OVER (ORDER BY model, strategy, dataset, budget) - 1 AS gid,
       row_number() OVER (ORDER BY model, strategy, dataset, budget, problem_id) - 1 AS pid,
       dense_rank() OVER (ORDER BY dataset) - 1 AS did,
       dense_rank() OVER (PARTITION BY dataset ORDER BY problem_id) - 1 AS qid,
       *
FROM per_problem
ORDER BY pid;
