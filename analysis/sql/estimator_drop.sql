-- The estimators' temporary tables, dropped when compute_accuracy is done.
DROP TABLE IF EXISTS est_per_problem;
DROP TABLE IF EXISTS est_cells;
DROP TABLE IF EXISTS est_problems;
