"""scaling-sweep: the sweep driver and its stages.

The stages, in the order data flows (each a folder; README "How it works"):
``config.py`` (typed settings composed from every stage) -> ``data/`` (problems, prompts) ->
``grid.py`` (cells, shards) -> ``scheduler.py`` / ``runner.py`` (shards on engines; ``inference/``
runs strategies, search, scorers, grading) -> ``actors/`` (the engines) -> ``results/`` (Parquet)
-> ``analysis/`` (DuckDB) -> ``serve/`` (Ray Serve, ``/solve``, OpenAI routes). ``launch.py`` (the
command line) and ``driver.py`` (one launch) drive a sweep.
"""
