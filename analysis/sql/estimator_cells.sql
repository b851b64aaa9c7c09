-- The estimators' cells (temporary): one row per (group, method, n) the accuracy table reports,
-- numbered by cell. Voting methods appear where the group has the reward score they read;
-- pass_at_n at every n of a non-greedy group; greedy at n = 1 for the greedy groups.
-- pays_reward: the method needs the reward model, so its cost includes reward FLOPs: it reads
-- scores (weighted_vote_*, best_of_n_*), or it is a tree search's (the search read them).
-- $grid_gids/$grid_ns (zipped): each non-greedy group's n values; $greedy_gids: greedy groups.
CREATE OR REPLACE TEMP TABLE est_cells AS
WITH grid AS (
    SELECT unnest($grid_gids) AS gid, unnest($grid_ns) AS n
),
methods AS (  -- voting estimators and the reward score each needs
    SELECT * FROM (VALUES
        ('majority_vote', NULL),
        ('weighted_vote_last', 'last'), ('weighted_vote_min', 'min'),
        ('weighted_vote_prod', 'prod'), ('weighted_vote_mean', 'mean'),
        ('best_of_n_last', 'last'), ('best_of_n_min', 'min'),
        ('best_of_n_prod', 'prod'), ('best_of_n_mean', 'mean')
    ) AS m(method, score)
),
groups AS (
    SELECT gid, any_value(tree) AS tree,
           sum(scored_last) > 0 AS has_last, sum(scored_min) > 0 AS has_min,
           sum(scored_prod) > 0 AS has_prod, sum(scored_mean) > 0 AS has_mean
    FROM est_problems
    GROUP BY gid
),
cells AS (
    SELECT g.gid, m.method, g.n, gr.tree OR m.score IS NOT NULL AS pays_reward
    FROM grid g
    JOIN groups gr USING (gid)
    CROSS JOIN methods m
    WHERE CASE m.score
        WHEN 'last' THEN gr.has_last WHEN 'min' THEN gr.has_min
        WHEN 'prod' THEN gr.has_prod WHEN 'mean' THEN gr.has_mean
        ELSE true END
    UNION ALL
    SELECT g.gid, 'pass_at_n', g.n, gr.tree FROM grid g JOIN groups gr USING (gid)
    UNION ALL
    SELECT gid, 'greedy', 1, false FROM groups WHERE list_contains($greedy_gids, gid)
)
SELECT (row_number() OVER (ORDER BY gid, method, n) - 1)::INTEGER AS cell, *
FROM cells;
