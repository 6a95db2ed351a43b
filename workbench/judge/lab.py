"""Judge the judge: run several judge configurations on one human-labelled set, then report them.

A *lab configuration* is a method (consistent / probability / pointwise / few-shot / calibrated) × a
prompt style × a rubric version; the model is the backend given. `judge_the_judge` runs the judgments
each configuration needs (sharing them: consistent and probability read the same pairwise run), turns
them into decisions and returns `judge_report`'s table: agreement with people and its CI beside the
random / always-first / longest / shortest baselines on the same pairs.

The labelled set is any frame of pairs with `human_pref` ('A' | 'B' | 'tie'): the shipped hh-rlhf
pairs (`load_preference_pairs`), or a run's own labels (`labelled_pairs(store)`: pair labels, or two
scored answers of one prompt, the higher winning).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from ..engine import Backend, Progress
from ..runs import RunStore
from .absolute import run_absolute_judge
from .calibrated import calibrated_judge
from .config import JudgeConfig
from .decisions import Decisions, consistent_decisions, pointwise_decisions, probability_decisions
from .fewshot import fewshot_rubric, with_examples
from .jury import jury
from .pairwise import make_pairs, run_pairwise_judge
from .preference_data import PAIR_SCHEMA, load_preference_pairs, split_pairs
from .report import JudgeReport, human_preferences, judge_report
from .rubric import Rubric
from .summary import judgeable_rows

__all__ = ["LAB_METHODS", "LabConfig", "LabResult", "judge_the_judge", "labelled_pairs", "shipped_pairs"]

LabMethod = Literal["consistent", "probability", "pointwise", "few-shot", "calibrated"]
LAB_METHODS: tuple[str, ...] = ("consistent", "probability", "pointwise", "few-shot", "calibrated")
Run = tuple[str, str, str]  # (kind: pairwise | absolute | few-shot, rubric version, prompt style)


class LabConfig(BaseModel):
    """One judge configuration to measure against people (the model is the backend's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: LabMethod = "consistent"
    """consistent: the pairwise verdict in both orders, a winner only when they agree; probability:
    P(a wins) from the verdict logprobs averaged over both orders; pointwise: each answer graded alone,
    the higher expected score wins; few-shot: the consistent verdict with `k` labelled example pairs in
    the prompt; calibrated: a cross-validated logistic fit of the label on length and the other chosen
    configurations' P(a wins) (its own rubric's probability method when none has one)."""
    prompt_style: Literal["auto", "completion", "chat"] = "auto"
    """How the judge is prompted: 'chat' messages (needs a chat template), a plain 'completion'
    prompt, or 'auto' (chat when the model has a chat template)."""
    rubric_version: str | None = None
    """Version hash of one of the rubrics given to `judge_the_judge`; None: the first of them."""
    k: int = Field(default=2, ge=1, le=8)
    """few-shot only: how many labelled example pairs precede the pair to judge."""

    def label(self) -> str:
        """A short readable name ('few-shot (k=2) · completion · 1a2b3c')."""
        method = f"few-shot (k={self.k})" if self.method == "few-shot" else self.method
        return " · ".join([method, self.prompt_style, (self.rubric_version or "first rubric")[:6]])


@dataclass
class LabResult:
    """What `judge_the_judge` returns."""

    report: JudgeReport | None
    """The report over every configuration (None when stopped before all judgments were made)."""
    judgments: pl.DataFrame
    """Every judgment row the configurations used (pairwise, absolute, few-shot)."""
    configs: dict[str, LabConfig] = field(default_factory=dict)
    """Report config name -> the lab configuration that produced it."""
    wall_seconds: dict[str, float] = field(default_factory=dict)
    """Wall-clock seconds of each judge run ('pairwise · completion · 1a2b3c')."""
    cancelled: bool = False


def labelled_pairs(store: RunStore, *, stage: str = "completion") -> pl.DataFrame:
    """The run's labelled pairs: every two kept answers of one prompt (a earlier in the run than b)
    that a person compared (`human_pref`, keyed by pair_id) or both scored (`human_score`), with
    `human_pref` set. Empty (with the pair columns) when the run has none."""
    empty = pl.DataFrame(schema=PAIR_SCHEMA)
    rows = judgeable_rows(store.rows(), stage=stage)
    if rows.height == 0 or "parent_id" not in rows.columns:
        return empty
    keep = tuple(c for c in ("instruction", "prompt", "input") if c in rows.columns)
    order = dict(zip(rows["id"].to_list(), range(rows.height), strict=True))
    pairs = make_pairs(rows, rows, on="parent_id", keep=keep)
    pairs = pairs.filter(
        pl.col("a_id").replace_strict(order, return_dtype=pl.Int64)
        < pl.col("b_id").replace_strict(order, return_dtype=pl.Int64)
    )
    human = human_preferences(store, pairs)
    pairs = pairs.filter(pl.col("pair_id").is_in(list(human)))
    return pairs.with_columns(
        pl.col("pair_id").replace_strict(human, return_dtype=pl.Utf8).alias("human_pref")
    )


def _check_pairs(pairs: pl.DataFrame) -> None:
    missing = {"pair_id", "a_id", "a_text", "b_id", "b_text", "human_pref"} - set(pairs.columns)
    if missing:
        raise ValueError(
            f"the labelled pairs lack columns {sorted(missing)}: use load_preference_pairs or labelled_pairs"
        )
    if pairs.filter(pl.col("human_pref").is_in(["A", "B"])).height < 2:
        raise ValueError(
            f"judging the judge needs at least 2 labelled pairs with a winner, have "
            f"{pairs.filter(pl.col('human_pref').is_in(['A', 'B'])).height}: label more pairs (or use hh-rlhf)"
        )


def _answers(pairs: pl.DataFrame) -> pl.DataFrame:
    """One row per answer of the pairs (what a pointwise judge grades)."""
    extra = [c for c in ("instruction", "prompt", "input") if c in pairs.columns]
    a = pairs.select(pl.col("a_id").alias("id"), *extra, pl.col("a_text").alias("text"))
    b = pairs.select(pl.col("b_id").alias("id"), *extra, pl.col("b_text").alias("text"))
    return pl.concat([a, b]).unique("id", keep="first", maintain_order=True)


class _Progress:
    """One progress bar across several judge runs: offsets each run's reports by the runs before."""

    def __init__(self, total: int, report: Callable[[Progress], None] | None) -> None:
        self.total, self.report, self.done, self.tokens = total, report, 0, 0
        self.start = time.perf_counter()

    def run_callback(self) -> Callable[[Progress], None]:
        done, tokens = self.done, self.tokens

        def cb(p: Progress) -> None:
            if self.report is not None:
                self.report(Progress(done + p.rows_done, self.total, tokens + p.tokens_generated,
                                     time.perf_counter() - self.start, p.errors))  # fmt: skip
            self.tokens = tokens + p.tokens_generated

        return cb

    def finish_run(self, rows: int) -> None:
        self.done += rows


def judge_the_judge(
    backend: Backend,
    store: RunStore,
    pairs: pl.DataFrame,
    configs: Sequence[LabConfig],
    rubrics: Rubric | Sequence[Rubric] | Mapping[str, Rubric],
    judge_config: JudgeConfig | None = None,
    *,
    tune: pl.DataFrame | None = None,
    add_jury: bool = False,
    folds: int = 5,
    n_boot: int = 1000,
    seed: int = 0,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> LabResult:
    """Judge the labelled `pairs` with every configuration and report each against the people.

    Judgments go to `store` (resumable: a rerun skips what the run has). `rubrics`: the rubric versions
    the configurations name (`LabConfig.rubric_version`). `tune`: labelled pairs the few-shot examples
    are drawn from (default: the labelled pairs themselves, never the judged pair). `add_jury`: also a
    jury (majority and mean probability) of every non-calibrated configuration."""
    if not configs:
        raise ValueError("choose at least one judge configuration")
    _check_pairs(pairs)
    if isinstance(rubrics, Rubric):
        rubrics = [rubrics]
    by_version = dict(rubrics) if isinstance(rubrics, Mapping) else {r.version: r for r in rubrics}
    if not by_version:
        raise ValueError("give at least one rubric")
    first = next(iter(by_version))
    for cfg in configs:
        if cfg.rubric_version is not None and cfg.rubric_version not in by_version:
            raise ValueError(f"no rubric version {cfg.rubric_version!r}; have {sorted(by_version)}")
    base = judge_config or JudgeConfig()
    human = {p: h for p, h in pairs.select("pair_id", "human_pref").iter_rows() if h is not None}
    winners = sum(1 for h in human.values() if h in ("A", "B"))
    examples = tune if tune is not None else pairs

    def run_of(cfg: LabConfig, kind: str | None = None) -> Run:
        kind = kind or {"pointwise": "absolute", "few-shot": "few-shot"}.get(cfg.method, "pairwise")
        return (kind, cfg.rubric_version or first, cfg.prompt_style)

    wanted: dict[Run, int] = {}  # run -> few-shot k (0 otherwise), in order of first use
    for cfg in configs:
        if cfg.method == "calibrated":
            if winners < 4:
                raise ValueError(
                    f"the calibrated judge needs at least 4 labelled pairs with a winner, have {winners}"
                )
            if not any(c.method != "calibrated" for c in configs):
                wanted.setdefault(run_of(cfg, "pairwise"), 0)
            continue
        wanted.setdefault(run_of(cfg), cfg.k if cfg.method == "few-shot" else 0)
    answers = _answers(pairs)
    sizes = {run: answers.height if run[0] == "absolute" else 2 * pairs.height for run in wanted}
    progress = _Progress(sum(sizes.values()), on_progress)
    judged: dict[Run, pl.DataFrame] = {}
    walls: dict[str, float] = {}
    for run, k in wanted.items():
        kind, version, style = run
        rubric, config = by_version[version], base.model_copy(update={"prompt_style": style})
        t0 = time.perf_counter()
        kw = {"on_progress": progress.run_callback(), "cancel": cancel}
        if kind == "absolute":
            judged[run] = run_absolute_judge(backend, store, answers, rubric, config, **kw)  # type: ignore[arg-type]
        elif kind == "few-shot":
            shots = with_examples(pairs, examples, k=k, seed=seed)
            judged[run] = run_pairwise_judge(backend, store, shots, fewshot_rubric(rubric), config, **kw)  # type: ignore[arg-type]
        else:
            judged[run] = run_pairwise_judge(backend, store, pairs, rubric, config, **kw)  # type: ignore[arg-type]
        walls[" · ".join([kind, style, version[:6]])] = time.perf_counter() - t0
        progress.finish_run(sizes[run])
        if cancel is not None and cancel.is_set():
            return LabResult(None, pl.concat(list(judged.values()), how="diagonal_relaxed"), {}, walls, True)
    judgments = pl.concat(list(judged.values()), how="diagonal_relaxed")

    parts: list[Decisions] = []
    names: dict[str, LabConfig] = {}
    run_wall: dict[str, float] = {}

    def add(dec: Decisions, cfg: LabConfig, run: Run) -> None:
        new = dec.configs.filter(~pl.col("config").is_in(list(names)))
        if new.height == 0:
            return  # the same configuration twice ('auto' resolving to 'completion', say)
        parts.append(dec.only(*new["config"].to_list()))
        for name in new["config"].to_list():
            names[name] = cfg
            run_wall[name] = walls[" · ".join([run[0], run[2], run[1][:6]])]

    for cfg in configs:
        if cfg.method == "calibrated":
            continue
        run = run_of(cfg)
        rows = judged[run]
        if cfg.method == "pointwise":
            add(pointwise_decisions(rows, pairs), cfg, run)
        elif cfg.method == "probability":
            add(probability_decisions(rows), cfg, run)
        else:  # consistent, and few-shot (the consistent verdict of the few-shot rubric version)
            add(consistent_decisions(rows), cfg, run)
    members = Decisions.concat(parts)
    calibrated = next((c for c in configs if c.method == "calibrated"), None)
    extra: list[Decisions] = []
    if add_jury and members.configs.height >= 2:
        extra.append(jury(members))
    if calibrated is not None:
        source = members
        if not parts:  # calibrated alone: its own rubric's probability method is the judge feature
            source = probability_decisions(judged[run_of(calibrated, "pairwise")])
        has_p = source.rows.filter(pl.col("p_a").is_not_null())["config"].unique().to_list()
        if not has_p:
            raise ValueError(
                "the calibrated judge needs a configuration with probabilities (P(a wins)) to fit on"
            )
        cal = calibrated_judge(source, pairs, human, has_p, folds=max(2, min(folds, winners // 2)), seed=seed)
        extra.append(cal)
        for name in cal.configs["config"].to_list():
            names[name] = calibrated
    report = judge_report(members, pairs=pairs, extra=extra, wall_seconds=run_wall, n_boot=n_boot, seed=seed)
    return LabResult(report, judgments, names, walls)


def shipped_pairs(
    n: int, *, tune: int = 8, seed: int = 0, max_chars: int | None = 1500, source: str = "hh-rlhf"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(n labelled pairs to judge, `tune` other pairs for few-shot examples) from a shipped set, seeded;
    only pairs whose conversation and replies fit in `max_chars` (short prompts keep CPU judging cheap)."""
    if n < 2:
        raise ValueError(f"judge at least 2 pairs, got {n}")
    pairs = load_preference_pairs(source, seed=seed)
    tune_pairs, held = split_pairs(pairs, tune=tune, held_out=n, seed=seed, max_chars=max_chars)
    return held, tune_pairs
