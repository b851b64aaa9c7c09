"""Analysis over a sweep's Parquet results with DuckDB: views, SQL questions, summaries."""
