"""Stage 2, inference on one shard: strategies (``strategies/``), tree search (``search/``), reward
models (``scorers/``), grading (``grading/``), stopping rules and the FLOPs rule. Each part declares
its own settings; it imports ``sweep.data`` and the Engine interface (``actors.protocol``), never
the driver or the results store."""
