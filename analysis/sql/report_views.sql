-- The report's question "which views does this connection have?": a results folder without
-- tree search has no nodes view, one never written has no samples view.
SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY view_name;
