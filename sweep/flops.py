"""Inference FLOPs: 2 × parameters per processed token (Kaplan et al., 2020).

A forward pass of a dense decoder costs about 2N FLOPs per token for N parameters
(one multiply and one add per weight); attention's context-dependent term is ignored,
as in the paper this project reproduces. Prompt and completion tokens are counted
separately so analyses can decide how to share prompt cost across samples.
"""

from __future__ import annotations


def forward_flops(params: int, tokens: float) -> float:
    """FLOPs of processing ``tokens`` tokens (a share may be fractional) with ``params`` parameters."""
    return 2.0 * params * tokens
