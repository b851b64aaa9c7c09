-- The samples of the groups $gids as numbers, for the adaptive replay: one row per sample in
-- (pid, sample_index) order, so each problem's samples are contiguous and its k-th row is its
-- k-th sample. kid numbers the problem's answer keys 0, 1, ... (null: no answer), as in
-- estimator_samples.sql; key_correct: that answer key is right. Each row's cost by the FLOPs
-- rule (flops.sql): policy_flops (completion + re-encoded context) and reward_flops; the prompt is
-- charged once per problem from est_problems. score: the score the weighted rule votes with.
WITH s AS (
    SELECT * REPLACE (coalesce(budget, 0) AS budget) FROM samples
),
keys AS (
    SELECT model, strategy, dataset, budget, problem_id, answer_key,
           (row_number() OVER (
               PARTITION BY model, strategy, dataset, budget, problem_id ORDER BY answer_key
           ) - 1)::INTEGER AS kid,
           bool_or(correct) AS key_correct
    FROM s
    WHERE answer_key IS NOT NULL
    GROUP BY model, strategy, dataset, budget, problem_id, answer_key
)
SELECT p.pid,
       k.kid,
       coalesce(k.key_correct, false) AS key_correct,
       s.score_last AS score,
       s.completion_tokens::DOUBLE AS tokens,
       row_policy_flops(s.completion_flops, s.context_flops) AS policy_flops,
       row_reward_flops(s.reward_flops) AS reward_flops
FROM s
JOIN est_problems p USING (model, strategy, dataset, budget, problem_id)
LEFT JOIN keys k USING (model, strategy, dataset, budget, problem_id, answer_key)
WHERE list_contains($gids, p.gid)
ORDER BY p.pid, s.sample_index;
