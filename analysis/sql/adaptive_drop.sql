-- The adaptive replay's temporary table, dropped with the estimators' own.
DROP TABLE IF EXISTS est_adaptive;
