-- The samples of the groups $gids as numbers, for the resampling estimators: one row per
-- sample in (pid, sample_index) order, so each problem's samples are contiguous and its k-th row
-- is its k-th sample. kid numbers the problem's answer keys 0, 1, ... (null: no answer, no vote);
-- key_correct: whether that answer key is right (estimator_keyed_samples.sql).
SELECT pid, kid, key_correct, correct, score_last, score_min, score_prod, score_mean
FROM est_keyed_samples
WHERE list_contains($gids, gid)
ORDER BY pid, sample_index;
