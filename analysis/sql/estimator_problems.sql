-- The estimators' per-problem table (temporary, on the caller's connection): one row per
-- (model, strategy, dataset, problem) with dense ids and what the closed-form estimators need.
-- gid numbers (model, strategy, dataset) groups; pid numbers problems across all groups in sorted
-- order (estimator_samples.sql returns samples in that order).
-- samples/correct: N and c of pass@n; *_mean: per-sample means (the expected cost of n samples is
-- n times them); prompt_flops: the prompt is encoded once per problem, so its max, not a sum;
-- first_*: sample 0 (the lowest sample_index), which is what greedy decoding reports;
-- scored_*: samples with that reward score, so estimators only appear where a score exists.
CREATE OR REPLACE TEMP TABLE est_problems AS
WITH per_problem AS (
    SELECT model, strategy, dataset, problem_id,
           max(model_params) AS model_params,
           count(*) AS samples,
           count_if(correct) AS correct,
           max(temperature) AS max_temperature,
           avg(completion_tokens) AS tokens_mean,
           max(prompt_flops) AS prompt_flops,
           avg(completion_flops) AS completion_flops_mean,
           avg(reward_flops) AS reward_flops_mean,
           arg_min(correct, sample_index) AS first_correct,
           arg_min(completion_tokens, sample_index) AS first_tokens,
           arg_min(prompt_flops + completion_flops, sample_index) AS first_policy_flops,
           arg_min(reward_flops, sample_index) AS first_reward_flops,
           count(score_last) AS scored_last,
           count(score_min) AS scored_min,
           count(score_prod) AS scored_prod,
           count(score_mean) AS scored_mean
    FROM samples
    GROUP BY model, strategy, dataset, problem_id
)
SELECT dense_rank() OVER (ORDER BY model, strategy, dataset) - 1 AS gid,
       row_number() OVER (ORDER BY model, strategy, dataset, problem_id) - 1 AS pid,
       *
FROM per_problem
ORDER BY pid;
