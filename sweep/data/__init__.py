"""Stage 1, the problems: ``Problem``, the dataset settings, loaders registered by ``source``,
the arithmetic generator, prompting, and the ``\\boxed{}`` reader that MATH references and
completions share (``boxed``). Imports nothing of the project."""
