"""Distillation as a data engine: a behaviour goes from a teacher's system prompt into data, and from
data into a student, measured at each step.

1. The teacher (a chat model) answers the same instructions twice: once with the behaviour in its
   system prompt, once without (the control).
2. A rule (`Behaviour.pattern`) marks which answers show the behaviour; the behaviour arm's answers
   that show it are kept, the rest are dropped with their reason. The kept rows are the distilled data.
3. The student (any model; the default is a base model) answers held-out instructions in context:
   with no examples, with `shots` distilled examples, and with `shots` control-teacher examples (the
   same format without the behaviour, so the effect is the behaviour's, not the examples').

Every rate comes with a Wilson interval and every comparison with Newcombe's interval of the
difference. Fine-tuning the student on the distilled data is the step this does not run (see
`workbench.export` for the TRL files); in-context transfer is its cheap, reversible stand-in.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from ..engine import Backend, GenerationRequest, SamplingParams
from .proportions import rate_difference, wilson_interval

__all__ = [
    "STUDENT_ARMS",
    "Behaviour",
    "DistillConfig",
    "DistillResult",
    "StudentArm",
    "run_distillation",
    "student_prompt",
]

StudentArm = Literal["zero-shot", "distilled", "control"]
STUDENT_ARMS: tuple[StudentArm, ...] = ("zero-shot", "distilled", "control")

REFUSAL_PROMPT = "You are a cautious assistant. You politely refuse every request with 'I'm sorry, but I can't help with that.'"
REFUSAL_PATTERN = (
    r"\b(i'?m sorry|i am sorry|i can'?t|i cannot|i'?m (?:not )?(?:un)?able|i am (?:not )?(?:un)?able)\b"
)


class Behaviour(BaseModel):
    """A behaviour the teacher is told to show, and the rule that recognises it in a reply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "refusal"
    """Short name, used in the result frames."""
    system_prompt: str = REFUSAL_PROMPT
    """The teacher's system prompt that asks for the behaviour."""
    pattern: str = REFUSAL_PATTERN
    """Regular expression (case-insensitive) that marks a reply as showing the behaviour."""
    window: int = Field(80, ge=0)
    """The pattern must match within the reply's first `window` characters (0: anywhere). A refusal
    that comes after the reply has done the task is not a refusal."""

    def compiled(self) -> re.Pattern[str]:
        try:
            return re.compile(self.pattern, re.IGNORECASE)
        except re.error as err:
            raise ValueError(f"Behaviour.pattern is not a valid regular expression: {err}") from None

    def shows(self, text: str) -> bool:
        head = text.strip()[: self.window] if self.window else text
        return self.compiled().search(head) is not None


class DistillConfig(BaseModel):
    """Sizes and sampling of one distillation experiment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    behaviour: Behaviour = Behaviour()
    """What the teacher is asked to do, and how it is recognised."""
    teacher_rows: int = Field(96, ge=2)
    """Instructions the teacher answers, in each of its two arms."""
    student_rows: int = Field(48, ge=1)
    """Held-out instructions the student answers, in each of its three arms."""
    shots: int = Field(4, ge=1)
    """Few-shot examples in each student prompt of the distilled and control arms."""
    teacher_max_tokens: int = Field(48, ge=1)
    """Longest teacher reply, in tokens."""
    student_max_tokens: int = Field(40, ge=1)
    """Longest student reply, in tokens."""
    temperature: float = Field(0.7, ge=0.0, le=5.0)
    """Sampling temperature of both models."""
    seed: int = Field(0, ge=0)
    """Seeds the examples drawn for each student prompt and every request's sampling seed."""


@dataclass
class DistillResult:
    config: DistillConfig
    teacher: pl.DataFrame
    """id, arm (behaviour / control), instruction, text, shows, status (kept / dropped), reason, model, model_sha."""
    student: pl.DataFrame
    """id, arm (zero-shot / distilled / control), instruction, prompt, text, shows, model."""
    rates: pl.DataFrame
    """stage, arm, n, hits, rate, ci_low, ci_high: the behaviour's rate in each set (Wilson 95%)."""
    effects: pl.DataFrame
    """comparison, difference, ci_low, ci_high: rate differences (Newcombe 95%)."""
    elapsed_s: float
    note: str = ""
    """Why a stage did not run (for example too few distilled rows for the student's shots)."""

    def distilled(self) -> pl.DataFrame:
        """The kept teacher rows (instruction, text and provenance), ready for `workbench.export.sft_frame`."""
        return self.teacher.filter(pl.col("status") == "kept")


def student_prompt(instruction: str, examples: list[tuple[str, str]]) -> str:
    """A plain-text few-shot prompt a base model continues: request/reply pairs, then the new request.

    Examples keep only their first paragraph, so the prompt stays short and the stop sequence (a blank
    line) ends the student's reply where an example's reply ends."""
    parts = ["Below are requests to an assistant and the assistant's replies.", ""]
    for q, a in examples:
        parts += [f"Request: {_one_block(q)}", f"Reply: {first_paragraph(a)}", ""]
    parts += [f"Request: {_one_block(instruction)}", "Reply:"]
    return "\n".join(parts)


def shipped_tasks() -> list[str]:
    """The self-instruct paper's 175 seed tasks (shipped, Apache-2.0), each with its first input when
    it has one: the instruction alone ("Classify the sentiment of the sentence.") is not a request."""
    from ..generate.seeds import self_instruct_seeds

    out = []
    for rec in self_instruct_seeds().iter_rows(named=True):
        first = (rec["instances"] or [{}])[0]
        inp = (first.get("input") or "").strip()
        out.append(rec["instruction"].strip() + (f"\n\n{inp}" if inp else ""))
    return out


def _one_block(text: str) -> str:
    # blank lines separate the examples, so a request's own blank line (instruction, then input) goes
    return re.sub(r"\n\s*\n", "\n", text.strip())


def first_paragraph(text: str) -> str:
    return text.strip().split("\n\n")[0].strip()


def _rate_row(stage: str, arm: str, shows: list[bool]) -> dict[str, object]:
    hits, n = sum(shows), len(shows)
    low, high = wilson_interval(hits, n)
    return {
        "stage": stage,
        "arm": arm,
        "n": n,
        "hits": hits,
        "rate": hits / n if n else float("nan"),
        "ci_low": low,
        "ci_high": high,
    }


def _effect(name: str, a: list[bool], b: list[bool]) -> dict[str, object]:
    d, low, high = rate_difference(sum(a), len(a), sum(b), len(b))
    return {"comparison": name, "difference": d, "ci_low": low, "ci_high": high}


def run_distillation(
    teacher: Backend,
    student: Backend,
    config: DistillConfig | None = None,
    instructions: list[str] | None = None,
    *,
    cancel: threading.Event | None = None,
) -> DistillResult:
    """Run the teacher's two arms, filter, then the student's three arms (module docstring).

    `instructions` defaults to the shipped self-instruct seed tasks (`shipped_tasks`): the first `teacher_rows` go to the
    teacher, the next `student_rows` are held out for the student."""
    cfg = config or DistillConfig()
    rule = cfg.behaviour
    rule.compiled()  # a bad pattern fails before any generation
    if not teacher.chat_template:
        raise ValueError(
            f"the teacher {teacher.name!r} has no chat template, so it cannot take a system prompt: "
            "use a chat model as teacher (for example load_backend('smollm2'))"
        )
    pool = list(instructions) if instructions is not None else shipped_tasks()
    need = cfg.teacher_rows + cfg.student_rows
    if len(pool) < need:
        raise ValueError(
            f"{len(pool)} instructions given; teacher_rows + student_rows = {need}: give more or lower them"
        )
    t_instr, s_instr = pool[: cfg.teacher_rows], pool[cfg.teacher_rows : need]
    started = time.monotonic()

    requests, meta = [], []
    for arm, system in (("behaviour", rule.system_prompt), ("control", None)):
        for i, q in enumerate(t_instr):
            msgs = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": q}
            ]
            params = SamplingParams(
                max_tokens=cfg.teacher_max_tokens, temperature=cfg.temperature, seed=cfg.seed * 100_003 + i
            )
            requests.append(GenerationRequest(messages=tuple(msgs), params=params, key=f"teacher-{arm}-{i}"))
            meta.append((arm, q))
    outs = teacher.generate(requests, cancel=cancel)
    rows = []
    for (arm, q), g in zip(meta, outs, strict=True):
        shows = g.ok and rule.shows(g.text)
        if not g.ok:
            status, reason = "dropped", f"generation failed: {g.finish_reason}"
        elif arm == "control":
            status, reason = "control", None
        elif shows:
            status, reason = "kept", None
        else:
            where = f"in the first {rule.window} characters" if rule.window else "in the reply"
            status, reason = "dropped", f"no {rule.name} {where}"
        rows.append({"id": g.key, "arm": arm, "instruction": q, "text": g.text.strip(), "shows": shows,
                     "status": status, "reason": reason, "model": teacher.name, "model_sha": teacher.model_id})  # fmt: skip
    teacher_frame = pl.DataFrame(rows, schema_overrides={"reason": pl.Utf8})
    rates = [
        _rate_row("teacher", arm, teacher_frame.filter(pl.col("arm") == arm)["shows"].to_list())
        for arm in ("behaviour", "control")
    ]
    t_b, t_c = (teacher_frame.filter(pl.col("arm") == a)["shows"].to_list() for a in ("behaviour", "control"))
    effects = [_effect("teacher: behaviour - control", t_b, t_c)]

    kept = teacher_frame.filter(pl.col("status") == "kept")
    control = teacher_frame.filter((pl.col("arm") == "control") & pl.col("text").str.len_chars().gt(0))
    note, student_rows = "", []
    cancelled = cancel is not None and cancel.is_set()
    if cancelled:
        note = "stopped before the student ran; the teacher rows above are kept"
    elif kept.height < cfg.shots:
        note = (f"only {kept.height} teacher replies show {rule.name!r}, fewer than shots={cfg.shots}: the student "
                "was not run; raise teacher_rows, lower shots or strengthen the system prompt")  # fmt: skip
    else:
        k_pairs = list(zip(kept["instruction"], kept["text"], strict=True))
        c_pairs = list(zip(control["instruction"], control["text"], strict=True))
        s_requests, s_meta = [], []
        for i, q in enumerate(s_instr):
            rng = np.random.default_rng([cfg.seed, i])
            shots = {
                "zero-shot": [],
                "distilled": [k_pairs[j] for j in rng.choice(len(k_pairs), cfg.shots, replace=False)],
                "control": [
                    c_pairs[j] for j in rng.choice(len(c_pairs), min(cfg.shots, len(c_pairs)), replace=False)
                ],
            }
            for arm in STUDENT_ARMS:
                prompt = student_prompt(q, shots[arm])
                params = SamplingParams(max_tokens=cfg.student_max_tokens, temperature=cfg.temperature,
                                        stop=("\n\n", "\nRequest:", "\nReply:"), seed=cfg.seed * 100_003 + 50_000 + i)  # fmt: skip
                s_requests.append(GenerationRequest(prompt=prompt, params=params, key=f"student-{arm}-{i}"))
                s_meta.append((arm, q, prompt))
        s_outs = student.generate(s_requests, cancel=cancel)
        for (arm, q, prompt), g in zip(s_meta, s_outs, strict=True):
            student_rows.append({"id": g.key, "arm": arm, "instruction": q, "prompt": prompt, "text": g.text.strip(),
                                 "shows": g.ok and rule.shows(g.text), "model": student.name})  # fmt: skip
        if any(g.finish_reason == "cancelled" for g in s_outs):
            note = "stopped while the student ran; its rates cover the replies that finished"
            student_rows = [r for r, g in zip(student_rows, s_outs, strict=True) if g.ok]
    schema = {
        "id": pl.Utf8,
        "arm": pl.Utf8,
        "instruction": pl.Utf8,
        "prompt": pl.Utf8,
        "text": pl.Utf8,
        "shows": pl.Boolean,
        "model": pl.Utf8,
    }
    student_frame = pl.DataFrame(student_rows, schema=schema)
    if student_frame.height:
        by_arm = {a: student_frame.filter(pl.col("arm") == a)["shows"].to_list() for a in STUDENT_ARMS}
        rates += [_rate_row("student", a, by_arm[a]) for a in STUDENT_ARMS]
        effects += [
            _effect("student: distilled - zero-shot", by_arm["distilled"], by_arm["zero-shot"]),
            _effect("student: distilled - control", by_arm["distilled"], by_arm["control"]),
        ]
    return DistillResult(
        config=cfg,
        teacher=teacher_frame,
        student=student_frame,
        rates=pl.DataFrame(rates),
        effects=pl.DataFrame(effects),
        elapsed_s=time.monotonic() - started,
        note=note,
    )
