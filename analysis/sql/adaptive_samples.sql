-- The samples of the groups $gids as numbers, for the adaptive replay: one row per sample in
-- (pid, sample_index) order, so each problem's samples are contiguous and its k-th row is its
-- k-th sample. kid numbers the problem's answer keys 0, 1, ... (null: no answer), as in
-- estimator_samples.sql (both read estimator_keyed_samples.sql); key_correct: that answer key is
-- right. Each row's cost by the FLOPs rule (flops.sql): policy_flops (completion + re-encoded
-- context) and reward_flops; the prompt is charged once per problem from est_problems. score: the
-- score the weighted rule votes with.
SELECT pid,
       kid,
       key_correct,
       score_last AS score,
       completion_tokens::DOUBLE AS tokens,
       row_policy_flops(completion_flops, context_flops) AS policy_flops,
       row_reward_flops(reward_flops) AS reward_flops
FROM est_keyed_samples
WHERE list_contains($gids, gid)
ORDER BY pid, sample_index;
