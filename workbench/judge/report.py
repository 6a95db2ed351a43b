"""The judge report: each configuration's agreement with people, beside baselines on the same rows.

In the spirit of alpaca_eval's `analyze_evaluators`. For every configuration (model × rubric version ×
prompt style × method) one row: agreement with the human preference and its bootstrap 95% CI, Cohen's
kappa, and on exactly the same labelled pairs the agreement of four judges that read no content:
`random` (a fair coin; its value is the expectation), `always_first`, `longest` and `shortest`. Beside
them: `gain_vs_length` (agreement minus the better length baseline, with a paired bootstrap CI),
position consistency and first-position rate, P(prefer longer), the score-length correlation of
absolute judges, parse failures, and seconds and tokens per 1,000 judgments.

Agreement is exact: a judge's 'tie' (no decision: a position flip, an unparsed verdict) counts as
wrong against a person who chose. `decided` says how often the judge did decide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import altair as alt
import numpy as np
import polars as pl

from ..runs import RunStore
from .calibration import cohens_kappa
from .decisions import Decisions, decisions_from_judgments
from .runner import with_judgment_schema

__all__ = [
    "BASELINES",
    "ConfigComparison",
    "JudgeReport",
    "compare_configs",
    "human_preferences",
    "judge_report",
]

BASELINES = ("random", "always_first", "longest", "shortest")
Labels = RunStore | Mapping[str, Any] | pl.DataFrame | None


def human_preferences(labels: Labels, pairs: pl.DataFrame | None = None) -> dict[str, str]:
    """pair_id -> 'A' | 'B' | 'tie' from a run's labels (`human_pref` by pair_id, or `human_score` on
    both answers of a pair, the higher winning), a mapping, a frame with pair_id and human_pref, or
    (labels=None) the `human_pref` column of `pairs`."""
    out: dict[str, str] = {}
    if labels is None:
        if pairs is None or "human_pref" not in pairs.columns:
            raise ValueError(
                "no human labels: pass labels= (a run, a mapping) or pairs with a human_pref column"
            )
        labels = pairs.select("pair_id", "human_pref")
    if isinstance(labels, pl.DataFrame):
        missing = {"pair_id", "human_pref"} - set(labels.columns)
        if missing:
            raise ValueError(f"the label frame lacks columns {sorted(missing)} (has {labels.columns})")
        out = {p: v for p, v in labels.select("pair_id", "human_pref").iter_rows() if v is not None}
    elif isinstance(labels, RunStore):
        out = {k: str(v) for k, v in labels.label_values("human_pref").items() if v is not None}
        scores = labels.label_values("human_score")
        if scores and pairs is not None:
            for pid, a, b in pairs.select("pair_id", "a_id", "b_id").iter_rows():
                if pid not in out and a in scores and b in scores:
                    sa, sb = float(scores[a]), float(scores[b])
                    out[pid] = "A" if sa > sb else "B" if sb > sa else "tie"
    else:
        out = {str(k): str(v) for k, v in labels.items() if v is not None}
    bad = {v for v in out.values() if v not in ("A", "B", "tie")}
    if bad:
        raise ValueError(f"human preferences must be 'A', 'B' or 'tie', got {sorted(bad)}")
    return out


def _lengths(pairs: pl.DataFrame | None, judgments: pl.DataFrame | None) -> dict[str, tuple[int, int]]:
    """pair_id -> (characters of a, characters of b)."""
    if pairs is not None and {"a_text", "b_text"} <= set(pairs.columns):
        return {
            p: (len(a or ""), len(b or ""))
            for p, a, b in pairs.select("pair_id", "a_text", "b_text").iter_rows()
        }
    out: dict[str, tuple[int, int]] = {}
    if judgments is not None and judgments.height:
        j = with_judgment_schema(judgments).filter(pl.col("judge_kind") == "pairwise")
        for rec in j.filter(pl.col("pair_order") == "AB").iter_rows(named=True):
            out[rec["pair_id"]] = (int(rec["answer_chars"] or 0), int(rec["other_chars"] or 0))
    return out


def _boot(correct: np.ndarray, idx: np.ndarray) -> tuple[float, float]:
    if len(correct) < 2:
        return float("nan"), float("nan")
    means = correct[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def _length_choice(la: np.ndarray, lb: np.ndarray, longer: bool) -> np.ndarray:
    pick_a = la > lb if longer else la < lb
    pick_b = lb > la if longer else lb < la
    return np.where(pick_a, "A", np.where(pick_b, "B", "tie"))


@dataclass
class _Rows:
    """The labelled pairs one configuration decided on, aligned."""

    pair_ids: list[str]
    judge: np.ndarray
    human: np.ndarray
    la: np.ndarray
    lb: np.ndarray


def _baseline_correct(rows: _Rows) -> dict[str, np.ndarray]:
    return {
        "always_first": (rows.human == "A").astype(float),
        "longest": (_length_choice(rows.la, rows.lb, True) == rows.human).astype(float),
        "shortest": (_length_choice(rows.la, rows.lb, False) == rows.human).astype(float),
    }


def _random_estimate(
    human: np.ndarray, idx: np.ndarray, rng: np.random.Generator
) -> tuple[float, float, float]:
    """A fair A/B coin: its expected agreement, and the 95% range one such coin lands in."""
    value = float(np.mean(np.where(human == "tie", 0.0, 0.5))) if len(human) else float("nan")
    if len(human) < 2:
        return value, float("nan"), float("nan")
    coins = np.where(rng.random(idx.shape) < 0.5, "A", "B")
    means = (coins == human[idx]).mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return value, float(lo), float(hi)


@dataclass
class JudgeReport:
    """What `judge_report` returns: the table, the baselines on all labelled pairs, the decisions."""

    table: pl.DataFrame
    """One row per configuration (see the module docstring for the columns)."""
    baselines: pl.DataFrame
    """baseline, agreement, ci_low, ci_high, n: on every labelled pair any configuration decided."""
    decisions: Decisions
    human: dict[str, str] = field(default_factory=dict)
    lengths: dict[str, tuple[int, int]] = field(default_factory=dict)

    def chart(self, *, width: int = 420) -> alt.LayerChart:
        """Agreement with its 95% CI per configuration, against the baseline lines."""
        return report_chart(self.table, self.baselines, width=width)

    def markdown(self, columns: Sequence[str] | None = None) -> str:
        """The table as Markdown (agreement [CI] beside the baselines), for a README or a log."""
        cols = list(columns or ("config", "n", "agreement", "kappa", "random", "always_first", "longest",
                                "shortest", "gain_vs_length", "position_consistency", "p_prefer_longer",
                                "parse_failures", "seconds_per_1k", "tokens_per_1k"))  # fmt: skip
        lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
        for r in self.table.iter_rows(named=True):
            cells = []
            for c in cols:
                v = r.get(c)
                if c == "agreement":
                    cells.append(f"{v:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
                elif c == "gain_vs_length":
                    cells.append(f"{v:+.3f} [{r['gain_ci_low']:+.3f}, {r['gain_ci_high']:+.3f}]")
                elif isinstance(v, float):
                    cells.append("n/a" if v != v else f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}")
                else:
                    cells.append("n/a" if v is None else str(v))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _aligned(dec: pl.DataFrame, human: Mapping[str, str], lengths: Mapping[str, tuple[int, int]]) -> _Rows:
    recs = [(p, d) for p, d in dec.select("pair_id", "decision").iter_rows() if p in human and p in lengths]
    ids = [p for p, _ in recs]
    return _Rows(
        ids,
        np.array([d or "tie" for _, d in recs], dtype=object),
        np.array([human[p] for p in ids], dtype=object),
        np.array([lengths[p][0] for p in ids], dtype=float),
        np.array([lengths[p][1] for p in ids], dtype=float),
    )


def judge_report(
    source: pl.DataFrame | Decisions,
    labels: Labels = None,
    *,
    pairs: pl.DataFrame | None = None,
    methods: Sequence[str] = ("consistent", "probability", "pointwise"),
    extra: Sequence[Decisions] = (),
    threshold: float = 0.5,
    wall_seconds: Mapping[str, float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> JudgeReport:
    """Measure every judge configuration against human preferences, with baselines on the same rows.

    `source`: judgment rows (pairwise and/or absolute, any number of models and rubric versions; the
    `methods` are derived from them) or ready `Decisions`. `extra`: more decisions to report beside
    them (few-shot runs, juries, calibrated judges). Human labels: see `human_preferences`. `pairs`
    (pair_id, a_id, b_id, a_text, b_text) give the lengths and the pointwise pairing; without them the
    pairs are read from pairwise judgments. `wall_seconds` maps a configuration to the wall-clock time
    its judgments took; otherwise `seconds_per_1k` sums each judgment's own latency (an upper bound on
    wall time when rows decode in parallel)."""
    judgments = None
    if isinstance(source, Decisions):
        decisions = source
    else:
        judgments = source
        decisions = decisions_from_judgments(source, pairs, methods=methods, threshold=threshold)
    decisions = Decisions.concat([decisions, *extra])
    if decisions.configs.height == 0:
        raise ValueError("nothing to report: no pairwise or absolute judgments (or decisions) were given")
    human = human_preferences(labels, pairs)
    lengths = _lengths(pairs, judgments)
    rng = np.random.default_rng(seed)
    records = []
    all_ids: set[str] = set()
    for cfg in decisions.configs.iter_rows(named=True):
        dec = decisions.rows.filter(pl.col("config") == cfg["config"])
        rows = _aligned(dec, human, lengths)
        all_ids.update(rows.pair_ids)
        n = len(rows.pair_ids)
        idx = rng.integers(0, max(n, 1), size=(n_boot, max(n, 1)))
        correct = (rows.judge == rows.human).astype(float)
        base = _baseline_correct(rows)
        length_best = max(("longest", "shortest"), key=lambda k: base[k].mean() if n else 0.0)
        gain = correct - base[length_best]
        lo, hi = _boot(correct, idx)
        glo, ghi = _boot(gain, idx)
        rand = _random_estimate(rows.human, idx, rng)
        decided = dec.filter(pl.col("decision").is_in(["A", "B"]))
        longer = [
            (d == "A") == (lengths[p][0] > lengths[p][1])
            for p, d in decided.select("pair_id", "decision").iter_rows()
            if p in lengths and lengths[p][0] != lengths[p][1]
        ]
        kappa = (
            cohens_kappa(list(rows.judge), list(rows.human), categories=["A", "B", "tie"])
            if n
            else float("nan")
        )
        wall = (wall_seconds or {}).get(cfg["config"])
        per_k = 1000.0 / cfg["judgments"] if cfg["judgments"] else float("nan")
        records.append({
            **{k: cfg[k] for k in ("config", "method", "model", "rubric", "rubric_version", "prompt_style")},
            "n": n,
            "agreement": float(correct.mean()) if n else float("nan"), "ci_low": lo, "ci_high": hi,
            "kappa": kappa,
            "decided": float(np.mean(rows.judge != "tie")) if n else float("nan"),
            "random": rand[0],
            **{k: float(v.mean()) if n else float("nan") for k, v in base.items()},
            "gain_vs_length": float(gain.mean()) if n else float("nan"), "gain_ci_low": glo, "gain_ci_high": ghi,
            "beats_length": bool(n and glo > 0),
            "position_consistency": cfg["position_consistency"],
            "first_position_rate": cfg["first_position_rate"],
            "p_prefer_longer": float(np.mean(longer)) if longer else None,
            "score_length_corr": cfg["score_length_corr"],
            "parse_failures": cfg["parse_failures"],
            "judgments": cfg["judgments"],
            "seconds_per_1k": (wall if wall is not None else cfg["seconds"]) * per_k,
            "tokens_per_1k": cfg["tokens"] * per_k,
        })  # fmt: skip
    table = pl.DataFrame(records, infer_schema_length=None)
    return JudgeReport(
        table, _baseline_table(sorted(all_ids), human, lengths, n_boot, rng), decisions, human, lengths
    )


def _baseline_table(
    ids: list[str], human: Mapping[str, str], lengths: Mapping[str, tuple[int, int]], n_boot: int,
    rng: np.random.Generator,
) -> pl.DataFrame:  # fmt: skip
    rows = _Rows(ids, np.array(["tie"] * len(ids), dtype=object), np.array([human[p] for p in ids], dtype=object),
                 np.array([lengths[p][0] for p in ids], dtype=float), np.array([lengths[p][1] for p in ids], dtype=float))  # fmt: skip
    n = len(ids)
    idx = rng.integers(0, max(n, 1), size=(n_boot, max(n, 1)))
    recs = []
    value, lo, hi = _random_estimate(rows.human, idx, rng)
    recs.append({"baseline": "random", "agreement": value, "ci_low": lo, "ci_high": hi, "n": n})
    for name, correct in _baseline_correct(rows).items():
        blo, bhi = _boot(correct, idx)
        recs.append({"baseline": name, "agreement": float(correct.mean()) if n else float("nan"),
                     "ci_low": blo, "ci_high": bhi, "n": n})  # fmt: skip
    return pl.DataFrame(recs)


def report_chart(table: pl.DataFrame, baselines: pl.DataFrame, *, width: int = 420) -> alt.LayerChart:
    """Points with 95% CI bars per configuration, vertical rules at each baseline (aggregated already:
    one row per configuration and per baseline)."""
    data = table.select("config", "agreement", "ci_low", "ci_high", "n", "kappa").to_dicts()
    base = baselines.select("baseline", "agreement").to_dicts()
    height = max(60, 22 * max(len(data), 1))
    x = alt.X(
        "agreement:Q",
        title="agreement with people",
        scale=alt.Scale(domain=[0, 1]),
        axis=alt.Axis(format="%"),
    )
    y = alt.Y("config:N", title=None, sort=None)
    bars = (
        alt.Chart(alt.Data(values=data))
        .mark_rule(strokeWidth=2)
        .encode(x=alt.X("ci_low:Q", scale=alt.Scale(domain=[0, 1])), x2="ci_high:Q", y=y)
    )
    points = alt.Chart(alt.Data(values=data)).mark_point(filled=True, size=60).encode(
        x=x, y=y, tooltip=["config:N", alt.Tooltip("agreement:Q", format=".1%"), alt.Tooltip("ci_low:Q", format=".1%"),
                           alt.Tooltip("ci_high:Q", format=".1%"), "n:Q", alt.Tooltip("kappa:Q", format=".2f")],
    )  # fmt: skip
    rules = alt.Chart(alt.Data(values=base)).mark_rule(strokeDash=[4, 3]).encode(
        x="agreement:Q", color=alt.Color("baseline:N", title="baseline (same rows)"),
        tooltip=["baseline:N", alt.Tooltip("agreement:Q", format=".1%")],
    )  # fmt: skip
    layered = alt.layer(rules, bars, points)
    return layered.properties(  # type: ignore[return-value]
        width=width, height=height, title="Agreement with people, 95% CI, against baselines"
    )


@dataclass
class ConfigComparison:
    """Two configurations on the labelled pairs both decided."""

    rows: pl.DataFrame
    """pair_id, old, new, human, changed (the decision differs)."""
    changed: int
    n: int
    old_agreement: float
    new_agreement: float
    difference: float
    """new minus old agreement."""
    ci_low: float
    ci_high: float
    """Paired bootstrap 95% CI of the difference (resampling pairs, both judges together)."""


def compare_configs(
    report: JudgeReport, old: str, new: str, *, n_boot: int = 1000, seed: int = 0
) -> ConfigComparison:
    """Which labelled pairs changed decision between two configurations (e.g. two rubric versions, a
    jury and its best member), and the CI of the agreement difference."""
    names = set(report.decisions.configs["config"].to_list())
    for c in (old, new):
        if c not in names:
            raise ValueError(f"no configuration {c!r} in the report; have {sorted(names)}")
    get = report.decisions.rows
    a = get.filter(pl.col("config") == old).select("pair_id", pl.col("decision").alias("old"))
    b = get.filter(pl.col("config") == new).select("pair_id", pl.col("decision").alias("new"))
    both = a.join(b, on="pair_id", maintain_order="left").filter(pl.col("pair_id").is_in(list(report.human)))
    both = both.with_columns(
        pl.col("pair_id").replace_strict(report.human, return_dtype=pl.Utf8).alias("human"),
    ).with_columns((pl.col("old") != pl.col("new")).alias("changed"))
    n = both.height
    co = (both["old"] == both["human"]).cast(pl.Float64).to_numpy()
    cn = (both["new"] == both["human"]).cast(pl.Float64).to_numpy()
    idx = np.random.default_rng(seed).integers(0, max(n, 1), size=(n_boot, max(n, 1)))
    lo, hi = _boot(cn - co, idx)
    nan = float("nan")
    return ConfigComparison(
        both, int(both["changed"].sum()), n, float(co.mean()) if n else nan, float(cn.mean()) if n else nan,
        float((cn - co).mean()) if n else nan, lo, hi,
    )  # fmt: skip
