-- The estimators' temporary tables and view, dropped when compute_accuracy is done.
DROP VIEW IF EXISTS est_keyed_samples;
DROP TABLE IF EXISTS est_per_problem;
DROP TABLE IF EXISTS est_cells;
DROP TABLE IF EXISTS est_problems;
