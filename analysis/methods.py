"""Method and strategy names, families, labels and styles, declared once for every table and figure.

A row of the accuracy table is a (strategy, method) pair: the strategy drew the samples
(greedy, sampling, a tree search), the method turned them into one answer (majority vote,
weighted vote or best-of-n under a step-score aggregation, pass@n, adaptive stopping). Figures
colour a row by its *family*, the same colour in every figure:

- a tree search (REBASE, MCTS, beam) is one family whatever method reads its leaves: the search
  is what a reader compares; its weighted vote is drawn at first (the paper's REBASE), the rest
  toggle on;
- under sampling, the method is the family: majority vote, weighted vote, best-of-n, pass@n;
- ``greedy`` rows (one sample at temperature 0) are one family, and so are ``adaptive_*``
  methods (stop sampling once the answers agree; ``samples_per_problem`` says what they spent).

Models are told apart by marker, smallest model first. Strategies are results labels: a
label's registered kind (``label -> name`` from the run's config) decides its family, and a
label with no kind given is read as its own kind. ``curve_table`` decides which curves a
figure draws at first (one per family, model and strategy) and their legend entries, so that
every figure's legend stays short and lists families in one order.

Left out: computing anything (``analysis.estimators``), drawing (``analysis.plots``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from analysis.subsets import SCORES

AGGREGATIONS = SCORES  # step-score aggregations of BoN and WV: the estimators' (last, min, prod, mean)
PASS_AT_N = "pass_at_n"  # coverage: the chance that some sample of n is right
ORACLE_METHODS = (PASS_AT_N,)  # needs a verifier that knows the answer: never on a frontier
ADAPTIVE_PREFIX = "adaptive_"
STRATEGY_ORDER = ("greedy", "sampling", "adaptive", "rebase", "mcts", "beam")
STRATEGY_LABELS = {
    "greedy": "Greedy", "sampling": "Sampling", "adaptive": "Adaptive", "rebase": "REBASE", "mcts": "MCTS",
    "beam": "Beam",
}  # fmt: skip
TREE_STRATEGIES = ("rebase", "mcts", "beam")
SAMPLING = "sampling"  # the strategy a tree search is compared against at equal FLOPs
# Method kinds: the method name without its aggregation or adaptive variant.
KIND_LABELS = {
    "greedy": "greedy", "majority_vote": "majority vote", "weighted_vote": "weighted vote",
    "best_of_n": "best-of-n", "pass_at_n": "pass@n", "adaptive": "adaptive",
}  # fmt: skip
# The paper's result tables: one column per voting kind, in this order.
TABLE_KINDS = {"majority_vote": "MV", "best_of_n": "BoN", "weighted_vote": "WV"}
# Markers per model, by size; frontier and reference lines are black and grey.
MODEL_MARKERS = ("circle", "square", "diamond", "triangle-up", "pentagon", "hexagon", "star", "cross")
FRONTIER_COLOR = "#111111"
DASHES = ("solid", "dash", "dashdot", "longdash")  # strategy labels of one family apart
DEFAULT_AGGREGATION = "last"


@dataclass(frozen=True)
class Family:
    """One colour of the figures: a tree search, a sampling method, greedy or adaptive stopping."""

    name: str
    label: str
    color: str
    shown: tuple[str, ...] = ()  # method kinds drawn at first, first present wins; () = all
    hidden: bool = False  # in the legend at first but drawn only when clicked (an oracle's ceiling)


FAMILIES = {
    f.name: f
    for f in (
        Family("greedy", "Greedy", "#5f5f5f"),
        Family("majority_vote", "Sampling · majority vote", "#1f77b4"),
        Family("weighted_vote", "Sampling · weighted vote", "#2ca02c"),
        Family("best_of_n", "Sampling · best-of-n", "#ff7f0e"),
        Family("adaptive", "Sampling · adaptive stopping", "#17becf"),
        # The live adaptive strategy (it stops drawing as the replayed rules would), every method.
        Family("adaptive_live", "Adaptive sampling (live)", "#0b5d6b", shown=("majority_vote", "weighted_vote")),
        Family("rebase", "REBASE", "#d62728", shown=("weighted_vote", "majority_vote")),
        Family("mcts", "MCTS", "#8c564b", shown=("weighted_vote", "majority_vote")),
        Family("beam", "Beam search", "#e377c2", shown=("weighted_vote", "majority_vote")),
        Family("pass_at_n", "Sampling · pass@n (oracle)", "#9467bd", hidden=True),
        Family("other", "Other", "#bcbd22"),
    )
}


@dataclass(frozen=True)
class Method:
    """A method name taken apart: ``weighted_vote_min`` → kind weighted_vote, aggregation min."""

    name: str
    kind: str
    aggregation: str | None = None
    variant: str | None = None  # adaptive_esc_w4 → "esc_w4"

    @property
    def label(self) -> str:
        """Short label: ``WV (min)``, ``MV``, ``pass@n``, ``adaptive esc_w4``."""
        if self.kind == "adaptive":
            return f"adaptive {self.variant}"
        base = TABLE_KINDS.get(self.kind) or KIND_LABELS.get(self.kind, self.name)
        return f"{base} ({self.aggregation})" if self.aggregation else base


def parse_method(method: str) -> Method:
    """``weighted_vote_min`` → Method(kind=weighted_vote, aggregation=min); unknown names are
    their own kind."""
    if method.startswith(ADAPTIVE_PREFIX):
        return Method(method, "adaptive", variant=method[len(ADAPTIVE_PREFIX):])
    for aggregation in AGGREGATIONS:
        if method.endswith(f"_{aggregation}"):
            return Method(method, method[: -len(aggregation) - 1], aggregation)
    return Method(method, method)


def strategy_kind(strategy: str, kinds: Mapping[str, str] | None = None) -> str:
    """The registered strategy a results label ran (``kinds``: label -> name, from the run's config)."""
    return (kinds or {}).get(strategy, strategy)


def strategy_label(strategy: str, kinds: Mapping[str, str] | None = None) -> str:
    """``rebase`` → ``REBASE``; a custom label keeps its name, with its kind when that differs."""
    kind = strategy_kind(strategy, kinds)
    if strategy == kind:
        return STRATEGY_LABELS.get(strategy, strategy)
    return f"{strategy} ({STRATEGY_LABELS.get(kind, kind)})"


def family_of(strategy: str, method: str, kinds: Mapping[str, str] | None = None) -> Family:
    """The family (colour) of one (strategy, method) row; see the module docstring."""
    kind = parse_method(method).kind
    strategy_kind_ = strategy_kind(strategy, kinds)
    if kind == "greedy" or strategy_kind_ == "greedy":
        return FAMILIES["greedy"]
    if kind == "adaptive":
        return FAMILIES["adaptive"]
    if strategy_kind_ == "adaptive":
        return FAMILIES["adaptive_live"]
    if strategy_kind_ in TREE_STRATEGIES:
        return FAMILIES[strategy_kind_]
    return FAMILIES.get(kind, FAMILIES["other"])


def ordered_strategies(strategies: Iterable[str], kinds: Mapping[str, str] | None = None) -> list[str]:
    """Strategy labels in STRATEGY_ORDER of their kinds, then by name."""
    order = {s: i for i, s in enumerate(STRATEGY_ORDER)}
    return sorted(set(strategies), key=lambda s: (order.get(strategy_kind(s, kinds), len(order)), s))


def tree_labels(kinds: Mapping[str, str]) -> list[str]:
    """Strategy labels that may name a tree search: those of ``kinds`` (label -> name) and the
    tree searches' own names, the tree searches first in TREE_STRATEGIES order, then by name."""
    def rank(label: str) -> tuple[int, str]:
        kind = strategy_kind(label, kinds)
        return (TREE_STRATEGIES.index(kind) if kind in TREE_STRATEGIES else len(TREE_STRATEGIES), label)

    return sorted({*kinds, *TREE_STRATEGIES}, key=rank)


def model_markers(models: Iterable[str]) -> dict[str, str]:
    """One marker per model, in the order given (smallest first)."""
    return {m: MODEL_MARKERS[i % len(MODEL_MARKERS)] for i, m in enumerate(dict.fromkeys(models))}


def format_params(params: float) -> str:
    """135M, 1.4B: a model's parameter count as people write it."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if params >= scale:
            return f"{params / scale:.3g}{suffix}"
    return f"{params:.0f}"


# ---------------------------------------------------------------------------------------------
# Which curves a figure draws at first, and their legend entries
# ---------------------------------------------------------------------------------------------


def curve_table(
    df: pd.DataFrame, kinds: Mapping[str, str] | None = None, *, aggregation: str = DEFAULT_AGGREGATION,
    all_primary: bool = False,
) -> pd.DataFrame:
    """One row per (model, strategy, method) curve of ``df``, smallest model first, with how the
    figures draw it: ``family``, ``aggregation``, ``role`` (``primary``: drawn at first;
    ``hidden``: in the legend, drawn when clicked; ``secondary``: out of the legend until the page
    shows all methods), ``legend`` (holds its family's legend entry), ``legendgroup``, ``rank``
    (legend order: FAMILIES'), ``name``, ``dash``, and ``visible``/``showlegend`` when the page
    shows ``aggregation`` (``best``: every one). Primary: one curve per family, model and
    strategy, the family's ``shown`` kind (a tree search's weighted vote), an adaptive family's
    first rule by name. ``all_primary``: every curve drawn (a figure of few curves)."""
    models = df.drop_duplicates("model").sort_values(["model_params", "model"])["model"].tolist()
    strategies = ordered_strategies(df["strategy"].unique(), kinds)
    keys = df.drop_duplicates(["model", "strategy", "method"])[["model", "strategy", "method"]]
    keys = keys.assign(_m=keys["model"].map(models.index), _s=keys["strategy"].map(strategies.index))
    keys = keys.sort_values(["_m", "_s", "method"]).drop(columns=["_m", "_s"]).reset_index(drop=True)
    methods = keys["method"].map(parse_method)
    families = [family_of(s, m, kinds) for s, m in zip(keys["strategy"], keys["method"])]
    rows = []
    for i, (key, method, family) in enumerate(zip(keys.itertuples(index=False), methods, families)):
        same = (keys["model"] == key.model) & (keys["strategy"] == key.strategy)
        role = "primary" if all_primary else _role(family, method, [m for m, s in zip(methods, same) if s])
        name = _curve_name(family, method, key.strategy, kinds)
        rows.append({
            "family": family.name, "aggregation": method.aggregation, "role": role,
            "name": f"{name} · {key.model}" if role == "secondary" and len(models) > 1 else name,
            "legendgroup": family.name if role != "secondary" else f"{family.name}:{key.strategy}:{key.model}:{key.method}",
            "rank": 10 * list(FAMILIES).index(family.name) + (5 if role == "secondary" else 0),
        })
    out = pd.concat([keys, pd.DataFrame(rows, index=keys.index, dtype=object)], axis=1)
    labels = {f: list(dict.fromkeys(out.loc[out["family"] == f, "strategy"])) for f in set(out["family"])}
    out["dash"] = [DASHES[labels[f].index(s) % len(DASHES)] if r != "secondary" else "dot"
                   for f, s, r in zip(out["family"], out["strategy"], out["role"])]
    out["legend"] = out["role"] == "secondary"
    first = out[out["role"] != "secondary"].drop_duplicates(["legendgroup", "aggregation", "dash"]).index
    out.loc[first, "legend"] = True
    shown = [_visible(c, aggregation) for _, c in out.iterrows()]
    return out.assign(visible=[v for v, _ in shown], showlegend=[legend for _, legend in shown])


def _role(family: Family, method: Method, siblings: list[Method]) -> str:
    """primary | hidden | secondary of one curve, among its model's and strategy's ``siblings``."""
    if family.hidden:
        return "hidden"
    if family.shown:
        wanted = next((k for k in family.shown if any(m.kind == k for m in siblings)), None)
        return "primary" if wanted is None or method.kind == wanted else "secondary"
    if method.kind == "adaptive":
        return "primary" if method.name == min(m.name for m in siblings if m.kind == "adaptive") else "secondary"
    return "primary"


def _curve_name(family: Family, method: Method, strategy: str, kinds: Mapping[str, str] | None) -> str:
    label = family.label if strategy_kind(strategy, kinds) == strategy else f"{family.label} [{strategy}]"
    if family.shown or (family.name == "greedy" and method.kind != "greedy"):
        return f"{label} · {method.label}"
    if method.kind == "adaptive":
        return f"{label} · {method.variant}"
    return f"{label} ({method.aggregation})" if method.aggregation else label


def _visible(curve: pd.Series, aggregation: str) -> tuple[bool | str, bool]:
    """(visible, showlegend) of a curve when the page shows ``aggregation`` and the main methods;
    the page's script (``analysis.report``) applies the same rule when the controls change."""
    agg_ok = curve["aggregation"] is None or curve["aggregation"] == aggregation or aggregation == "best"
    if agg_ok and curve["role"] == "primary":
        return True, bool(curve["legend"])
    if agg_ok and curve["role"] == "hidden":
        return "legendonly", bool(curve["legend"])
    return False, False
