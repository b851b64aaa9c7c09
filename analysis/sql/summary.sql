-- Accuracy, tokens, FLOPs and latency per (model, strategy, dataset, n) for the launcher's table.
-- Majority voting at n uses each problem's first n samples (samples are i.i.d., so these are
-- an unbiased n-subset); unanswered samples do not vote; ties go to the answer seen first.
-- FLOPs per problem: the prompt is encoded once per request, plus every completion token.
-- $shard_ids: shards of the current grid; $strategies/$methods/$ns: the evaluated grid, zipped.
WITH s AS (
    SELECT * FROM samples WHERE list_contains($shard_ids, shard_id)
),
grid AS (
    SELECT unnest($strategies) AS strategy, unnest($methods) AS method, unnest($ns) AS n
),
votes AS (
    SELECT s.model, s.strategy, s.dataset, s.problem_id, g.n, s.answer_key,
           count(*) AS votes, bool_or(s.correct) AS correct, min(s.sample_index) AS first_seen
    FROM s JOIN grid g ON s.strategy = g.strategy AND s.sample_index < g.n
    WHERE s.answer_key IS NOT NULL
    GROUP BY ALL
),
winners AS (
    SELECT * FROM votes
    QUALIFY row_number() OVER (
        PARTITION BY model, strategy, dataset, problem_id, n ORDER BY votes DESC, first_seen
    ) = 1
),
per_problem AS (
    SELECT s.model, s.strategy, g.method, s.dataset, s.problem_id, g.n,
           sum(s.completion_tokens) AS tokens,
           max(s.prompt_flops) + sum(s.completion_flops) AS flops,
           max(s.latency_s) AS latency_s,
           count(s.error) AS errors
    FROM s JOIN grid g ON s.strategy = g.strategy AND s.sample_index < g.n
    GROUP BY ALL
)
SELECT p.model, p.strategy, p.method, p.dataset, p.n,
       count(*) AS problems,
       avg(coalesce(w.correct, false)::INTEGER) AS accuracy,
       avg(p.tokens) AS tokens_per_problem,
       avg(p.flops) AS flops_per_problem,
       avg(p.latency_s) AS latency_s,
       sum(p.errors) AS errors
FROM per_problem p
LEFT JOIN winners w USING (model, strategy, dataset, problem_id, n)
GROUP BY ALL
ORDER BY p.model, p.dataset, p.strategy, p.n;
