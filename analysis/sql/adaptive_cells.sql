-- The adaptive stopping rules' cells, appended to est_cells (estimator_cells.sql) after its own,
-- numbered on from its last cell: one per (flat sampling group, rule at a threshold), at n = the
-- group's n_max (the most samples a problem may draw). pays_reward: the rule reads the reward
-- model's scores (adaptive_weighted_*), so its cost includes the drawn samples' reward FLOPs.
-- $gids/$methods/$ns/$pays (zipped): the cells.
INSERT INTO est_cells
WITH new AS (
    SELECT unnest($gids) AS gid, unnest($methods) AS method, unnest($ns) AS n, unnest($pays) AS pays_reward
)
SELECT ((SELECT coalesce(max(cell), -1) FROM est_cells) + row_number() OVER (ORDER BY gid, method))::INTEGER,
       gid, method, n, pays_reward
FROM new;
