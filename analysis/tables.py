"""The report's tables: the paper-style result table, and the header that says what ran (the
run, its grid, models, datasets, what it spent, its errors, the other runs in the folder).

Pure: DataFrames and the run's facts (``RunFacts``) in, DataFrames or HTML fragments out.
Left out: reading results (``analysis.report.gather_facts``), the page around the tables
(``analysis.report``), names and labels (``analysis.methods``).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from analysis.methods import (
    AGGREGATIONS,
    KIND_LABELS,
    ORACLE_METHODS,
    TABLE_KINDS,
    format_params,
    ordered_strategies,
    parse_method,
    strategy_kind,
    strategy_label,
)

log = logging.getLogger(__name__)

# Settings of a strategy entry the grid table shows, in this order, when the entry has them.
GRID_SETTINGS = (
    "n", "budgets", "n_max", "window", "rule", "threshold", "temperature", "reward_model", "max_tokens",
    "step_max_tokens", "max_depth",
)  # fmt: skip
BUSY_KEYS = ("engine_busy_fraction", "engine_busy")  # a run record's busy fraction, when it has one


@dataclass(frozen=True)
class RunFacts:
    """What the header says about one run (``analysis.report.gather_facts`` reads it); any part
    may be missing, and the header says what it lacks."""

    record: Mapping[str, Any] | None = None  # the run's record in manifest.json
    records: list[Mapping[str, Any]] = field(default_factory=list)  # every run's record
    runs: pd.DataFrame | None = None  # the ``runs`` view
    spent: pd.DataFrame | None = None  # report_spent.sql
    problems: pd.DataFrame | None = None  # report_problems.sql
    errors: pd.DataFrame | None = None  # report_*_errors.sql, the first rows
    error_rows: int = 0  # all of them
    trees: dict[str, tuple[Mapping[str, Any], pd.DataFrame]] = field(default_factory=dict)  # dataset -> (pick, nodes)

    @property
    def kinds(self) -> dict[str, str]:
        """Strategy label -> registered name, from the run's config."""
        entries = ((self.record or {}).get("config") or {}).get("strategies", [])
        return {e.get("label") or e["name"]: e["name"] for e in entries if isinstance(e, dict) and "name" in e}


def largest_common_n(df: pd.DataFrame) -> int | None:
    """The largest n that every (model, strategy, method) curve has; None if they share none.

    Greedy (one sample by construction), oracle and adaptive methods do not constrain it.
    """
    curves = df[~df["method"].isin(["greedy", *ORACLE_METHODS]) & ~_adaptive(df)]
    if curves.empty:
        return None
    sets = [set(rows["n"]) for _, rows in curves.groupby(["model", "strategy", "method"])]
    common = set.intersection(*sets)
    return int(max(common)) if common else None


def paper_table(
    df: pd.DataFrame, *, n: int | None = None, aggregation: str = "last", kinds: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Accuracy and FLOPs per model in the layout of Wu et al. (2024)'s tables, one dataset.

    Rows: models, smallest first. Columns: a three-level index (strategy, method, quantity) with
    quantity ∈ {"accuracy", "FLOPs"}: ("Greedy", "Greedy", ·), then MV, BoN, WV under each
    non-greedy strategy present (Sampling, REBASE, then others); a strategy or method with no
    rows is left out. Voting cells are at ``n`` (default: ``largest_common_n``; if the curves share
    no n, the largest n, blank where a curve lacks it). BoN and WV use ``aggregation`` of step
    rewards (``"last"``, ``"min"``, ``"prod"``, ``"mean"``), or ``"best"``: the most accurate
    aggregation per cell. The n used is in ``table.attrs["n"]``. ``kinds``: strategy label ->
    registered name (``analysis.methods``).
    """
    if df["dataset"].nunique() > 1:
        raise ValueError(f"paper_table takes one dataset; got {sorted(df['dataset'].unique())}")
    if aggregation not in (*AGGREGATIONS, "best"):
        raise ValueError(f"aggregation must be one of {[*AGGREGATIONS, 'best']}; got {aggregation!r}")
    if n is None:
        n = largest_common_n(df)
        curves = df.loc[~df["method"].isin(["greedy", *ORACLE_METHODS]) & ~_adaptive(df), "n"]
        if n is None and not curves.empty:
            n = int(curves.max())
            log.warning("no n common to every curve; the table uses n = %d and leaves gaps", n)
    models = df.drop_duplicates("model").sort_values(["model_params", "model"])["model"].tolist()
    columns: dict[tuple[str, str, str], pd.Series] = {}

    greedy = df[df["method"] == "greedy"].assign(_pref=lambda t: t["strategy"] != "greedy")
    greedy = greedy.sort_values(["_pref", "n"]).drop_duplicates("model").set_index("model")
    if not greedy.empty:
        columns[("Greedy", "Greedy", "accuracy")] = greedy["accuracy"]
        columns[("Greedy", "Greedy", "FLOPs")] = greedy["flops_per_problem"]

    at_n = df[df["n"] == n] if n is not None else df.iloc[0:0]
    for strategy in ordered_strategies(df["strategy"].unique(), kinds):
        if strategy_kind(strategy, kinds) == "greedy":
            continue
        rows = at_n[at_n["strategy"] == strategy]
        parsed = rows["method"].map(parse_method)
        kind = parsed.map(lambda m: m.kind)
        agg = parsed.map(lambda m: m.aggregation)
        for name, label in TABLE_KINDS.items():
            wanted = kind == name
            if name != "majority_vote" and aggregation != "best":
                wanted &= agg == aggregation
            cells = rows[wanted]
            if cells.empty:
                continue
            # "best": the most accurate aggregation per model, the cheaper one on ties.
            cells = cells.sort_values(["accuracy", "flops_per_problem"], ascending=[False, True])
            cells = cells.drop_duplicates("model").set_index("model")
            top = strategy_label(strategy, kinds)
            columns[(top, label, "accuracy")] = cells["accuracy"]
            columns[(top, label, "FLOPs")] = cells["flops_per_problem"]

    table = pd.DataFrame(columns, index=pd.Index(models, name="model"))
    names = ["strategy", "method", ""]
    table.columns = (pd.MultiIndex.from_tuples(list(columns), names=names) if columns
                     else pd.MultiIndex(levels=[[]] * 3, codes=[[]] * 3, names=names))
    table.attrs["n"] = n
    return table


def _adaptive(df: pd.DataFrame) -> pd.Series:
    return df["method"].map(lambda m: parse_method(m).kind == "adaptive")


def models_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per model, smallest first, with its parameters."""
    models = df.drop_duplicates("model").sort_values(["model_params", "model"])
    table = pd.DataFrame({"model": models["model"], "parameters": models["model_params"].map(format_params)})
    return table.reset_index(drop=True)


def grid_table(
    df: pd.DataFrame, config: Mapping[str, Any] | None, kinds: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """One row per strategy label: its kind, its settings from the run's config (``GRID_SETTINGS``
    that the entry has) and the methods the table evaluated for it."""
    entries = {e.get("label") or e.get("name"): e for e in (config or {}).get("strategies", [])}
    rows = []
    for strategy in ordered_strategies(df["strategy"].unique(), kinds):
        entry = entries.get(strategy, {})
        settings = "; ".join(f"{k} {_value(entry[k])}" for k in GRID_SETTINGS if entry.get(k) is not None)
        methods = [parse_method(m) for m in df.loc[df["strategy"] == strategy, "method"].unique()]
        counts = {k: sum(m.kind == k for m in methods) for k in KIND_LABELS if any(m.kind == k for m in methods)}
        aggs = sorted({m.aggregation for m in methods if m.aggregation}, key=AGGREGATIONS.index)
        kinds_seen = [KIND_LABELS[k] + (f" ({counts[k]} rules)" if k == "adaptive" else "")
                      + (f" ({', '.join(aggs)})" if k in ("weighted_vote", "best_of_n") and aggs else "")
                      for k in counts]
        rows.append({
            "strategy": strategy_label(strategy, kinds),
            "settings": settings or "",
            "n or budget": ", ".join(str(v) for v in sorted(df.loc[df["strategy"] == strategy, "n"].unique())),
            "methods": ", ".join(kinds_seen),
        })
    return pd.DataFrame(rows, columns=["strategy", "settings", "n or budget", "methods"])


def datasets_table(df: pd.DataFrame, problems: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per dataset: problems in the run's problem files (``report_problems.sql``) and the
    most any accuracy row averaged over."""
    answered = df.groupby("dataset")["problems"].max().rename("problems answered")
    table = answered.reset_index().assign(problems=answered.to_numpy(), levels="")
    if problems is not None and not problems.empty:
        extra = problems.set_index("dataset")
        written = table["dataset"].map(extra["problems"])
        table["problems"] = written.fillna(table["problems answered"]).astype(int)
        levels = extra["levels"].map(lambda v: ", ".join(str(x) for x in (v if v is not None else []) if x == x))
        table["levels"] = table["dataset"].map(levels).fillna("")
    return table


def spent_totals(spent: pd.DataFrame) -> dict[str, float]:
    """Samples, generated tokens, FLOPs (policy and reward) and error rows of a whole run."""
    columns = ("samples", "tokens", "policy_flops", "reward_flops", "flops", "errors")
    if spent is None or spent.empty:
        return {c: 0.0 for c in columns}
    return {c: float(spent[c].sum()) for c in columns}


def runs_table(runs: pd.DataFrame, records: list[Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """The runs of the folder, oldest first, the one shown marked; wall time from the manifest."""
    if runs is None or runs.empty:
        return pd.DataFrame(columns=["run", "started", "finished", "wall time", "shards", "failed", "shown"])
    seconds = {r.get("run_id"): r.get("seconds") for r in records or []}
    return pd.DataFrame({
        "run": runs["run_id"],
        "started": runs["started"].map(_short_time),
        "finished": runs["finished"].map(_short_time),
        "wall time": runs["run_id"].map(lambda r: format_seconds(seconds.get(r))),
        "shards": runs["shards"],
        "failed": runs["shards_failed"],
        "shown": runs["current"].map(lambda c: "◀ this report" if c else ""),
    })


def format_seconds(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "unfinished"
    minutes, rest = divmod(float(seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {rest:02.0f}s" if minutes else f"{rest:.1f} s")


def _short_time(text: object) -> str:
    if not isinstance(text, str) or not text:
        return ""
    return text.replace("T", " ")[:19]


def _value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def header_html(df: pd.DataFrame, facts: RunFacts) -> str:
    """The header: the run, models, datasets, what it spent, engine busy time, errors; and the grid.

    Facts that were not read (``RunFacts()``: a caller with the table alone) are left out; facts
    read and absent (no recorded run, no busy time in the manifest) are said to be absent."""
    record, items = facts.record or {}, []
    if facts.runs is not None:
        runs = len(facts.runs)
        run = (f"<code>{html.escape(str(record['run_id']))}</code>, started "
               f"{html.escape(_short_time(record.get('started')))}, wall time {format_seconds(record.get('seconds'))}, "
               f"{record.get('shards_total', '?')} shards ({len(record.get('shards_failed') or {})} failed, "
               f"{record.get('retries', 0)} retries)" if record.get("run_id") else "no recorded run (the folder is read whole)")
        others = f' · <a href="#runs">{runs} run{"s" if runs != 1 else ""} in this folder</a>' if runs else ""
        items.append(("Run", run + others))
    models = models_table(df)
    items.append(("Models", ", ".join(f"{html.escape(m)} ({p} params)" for m, p in zip(models["model"], models["parameters"]))))
    datasets = datasets_table(df, facts.problems)
    items.append(("Datasets", ", ".join(
        f"{html.escape(str(r['dataset']))}: {int(r['problems'])} problems"
        + (f" (level {html.escape(str(r['levels']))})" if r["levels"] else "") for _, r in datasets.iterrows())))
    if facts.spent is not None:
        totals = spent_totals(facts.spent)
        items.append(("Spent", f"{totals['samples']:,.0f} samples, {si(totals['tokens'])} generated tokens, "
                               f"{si(totals['flops'])}FLOPs ({si(totals['policy_flops'])}FLOPs policy + "
                               f"{si(totals['reward_flops'])}FLOPs reward model)"))
    if facts.record is not None:
        busy = next((record[k] for k in BUSY_KEYS if k in record), None)
        items.append(("Engine busy", _busy(busy) if busy is not None else
                      "not recorded: this launcher writes no busy time to the manifest"))
    if facts.errors is not None:
        rows = facts.error_rows
        items.append(("Errors", f'<a href="#errors">{rows:,} row{"s" if rows != 1 else ""} with errors</a>'
                      if rows else "none"))
    facts_html = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
    return (f'<dl class="facts">{facts_html}</dl><details open><summary>Grid: strategies and methods</summary>'
            f"{frame_html(grid_table(df, record.get('config'), facts.kinds), 'grid')}</details>")


def _busy(value: object) -> str:
    """A busy fraction (0.83 → 83%), or one per engine."""
    if isinstance(value, Mapping):
        return ", ".join(f"{html.escape(str(k))}: {_busy(v)}" for k, v in value.items())
    if isinstance(value, (int, float)) and 0 <= value <= 1:
        return f"{value:.0%}"
    return html.escape(str(value))


def paper_table_html(table: pd.DataFrame, *, table_id: str) -> str:
    shown = table.copy().astype(object)
    for column in table.columns:
        fmt = "{:.1%}" if column[-1] == "accuracy" else "{:.2e}"
        shown[column] = [fmt.format(v) if pd.notna(v) else "" for v in table[column]]
    return shown.rename_axis(index=None).to_html(table_id=table_id, na_rep="", border=0)


def frame_html(frame: pd.DataFrame, table_id: str) -> str:
    if frame.empty:
        return '<p class="note">(empty)</p>'
    frame = frame.drop(columns=[c for c in ("accuracy_replicates",) if c in frame])
    return frame.to_html(table_id=table_id, index=False, na_rep="", border=0, float_format=lambda v: f"{v:.4g}")


def si(value: float) -> str:
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}"
    return f"{value:.3g} "
