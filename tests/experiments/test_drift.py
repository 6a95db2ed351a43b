"""The in-context drift loop on a fake backend: what each arm's prompts hold, seeding, stop, errors."""

from __future__ import annotations

import re
import threading

import pytest

from workbench.engine import FakeBackend, GenerationRequest
from workbench.experiments import DriftConfig, change, contrast, run_drift

HUMAN = [f"Write a {adj} note about {topic}" for adj in ("short", "kind", "formal", "funny") for topic in
         ("rain", "tax", "cats", "maths", "trains", "jazz")]  # fmt: skip


def examples_in(prompt: str) -> list[str]:
    return re.findall(r"^\d+\. (.*)$", prompt, flags=re.M)


def copier(req: GenerationRequest) -> str:
    """A maximally self-copying model: it repeats the first example it was shown."""
    return " " + examples_in(req.prompt or "")[0]


def test_replace_copies_itself_and_mix_keeps_human_examples_in_every_prompt():
    backend = FakeBackend(copier)
    cfg = DriftConfig(generations=3, per_generation=12, seeds=3, examples=4, human_examples=2)
    result = run_drift(backend, cfg, HUMAN)
    assert len(backend.calls) == 3 * 2 * 3 * 12
    # generation 3's prompts: replace (3 seeds x 12), then mix, whose first 2 examples stay human
    last_gen = backend.calls[-72:]
    assert all(set(examples_in(r.prompt or "")[:2]) <= set(HUMAN) for r in last_gen[36:])
    # a copier narrows the replace arm: fewer distinct bigrams, closer neighbours than at the start
    moved = change(result.per_seed, "replace").to_dicts()
    by_metric = {r["metric"]: r for r in moved}
    assert by_metric["distinct_2"]["difference"] < 0 and by_metric["nn_rouge_l"]["difference"] > 0
    gap = {r["metric"]: r for r in contrast(result.per_seed, "replace", "mix").to_dicts()}
    assert gap["distinct_2"]["difference"] <= 0
    assert set(result.summary["metric"]) == {
        "distinct_2",
        "self_bleu",
        "nn_rouge_l",
        "compression_ratio",
        "mean_words",
    }
    assert result.texts.height == 216 and result.texts["kept"].all()


def test_seeded_runs_repeat_exactly():
    cfg = DriftConfig(generations=2, per_generation=6, seeds=2)
    a = run_drift(FakeBackend(), cfg, HUMAN)
    b = run_drift(FakeBackend(), cfg, HUMAN)
    assert a.per_seed.equals(b.per_seed) and a.texts.equals(b.texts)


def test_short_outputs_are_dropped_and_leave_no_value():
    result = run_drift(
        FakeBackend(lambda r: "ok"), DriftConfig(generations=2, per_generation=4, seeds=1), HUMAN
    )
    assert not result.texts["kept"].any()
    assert result.per_seed["generation"].unique().to_list() == [0]


def test_stop_keeps_the_finished_generations():
    cancel = threading.Event()
    seen = []

    def stop_after_first(p):
        seen.append(p.rows_done)
        cancel.set()

    result = run_drift(FakeBackend(), DriftConfig(generations=5, per_generation=4, seeds=1), HUMAN,
                       on_progress=stop_after_first, cancel=cancel)  # fmt: skip
    assert result.cancelled and seen == [1]
    assert result.per_seed["generation"].max() == 1


def test_bad_input_says_what_to_change():
    with pytest.raises(ValueError, match="at least examples=4"):
        run_drift(FakeBackend(), DriftConfig(), ["one", "two"])
    with pytest.raises(ValueError, match="human_examples=5 is more than examples=4"):
        run_drift(FakeBackend(), DriftConfig(human_examples=5), HUMAN)
    with pytest.raises(ValueError, match="no results for arm 'nope'"):
        change(
            run_drift(FakeBackend(), DriftConfig(generations=1, per_generation=4, seeds=2), HUMAN).per_seed,
            "nope",
        )
