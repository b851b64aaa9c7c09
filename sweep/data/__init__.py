"""Stage 1, the problems: ``Problem``, the dataset settings, loaders registered by ``source``,
the arithmetic generator and prompting. Imports nothing of the project but the answer helpers of
``sweep.inference.grading.answers`` (a MATH reference is read out of its solution the way a
completion's answer is)."""
