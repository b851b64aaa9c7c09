"""The results stage: the Arrow schema (``schema``), the one Parquet layout and its writer
(``store``), and the runs recorded in ``manifest.json`` (``runs``). Imports nothing of the project:
the writer (``sweep.runner``) and every reader (``analysis``) share it."""
