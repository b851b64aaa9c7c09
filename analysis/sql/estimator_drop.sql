-- The estimators' temporary table, dropped when compute_accuracy is done.
DROP TABLE IF EXISTS est_problems;
