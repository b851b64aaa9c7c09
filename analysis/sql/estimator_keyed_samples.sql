-- The samples of est_problems' groups with their problem and answer-key numbers, for the resampling
-- estimators (estimator_samples.sql) and the adaptive replay (adaptive_samples.sql): a temporary
-- view on the caller's connection, dropped with the estimators' tables (estimator_drop.sql).
-- Every column of the samples view (budget 0 for flat strategies, as in est_problems), plus
-- gid and pid (est_problems'), kid numbering the problem's answer keys 0, 1, ... in answer_key
-- order (null: no answer, no vote) and key_correct: whether that answer key is right (any sample
-- with it graded right).
CREATE OR REPLACE TEMP VIEW est_keyed_samples AS
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
SELECT p.gid,
       p.pid,
       k.kid,
       coalesce(k.key_correct, false) AS key_correct,
       s.*
FROM s
JOIN est_problems p USING (model, strategy, dataset, budget, problem_id)
LEFT JOIN keys k USING (model, strategy, dataset, budget, problem_id, answer_key);
