import itertools

import numpy as np
import polars as pl
import pytest
from judge_fakes import length_judge, longer_pair_judge

from workbench.engine import FakeBackend
from workbench.judge import (
    bootstrap,
    cohens_kappa,
    compare_versions,
    make_pairs,
    preference_agreement,
    run_absolute_judge,
    run_pairwise_judge,
    score_agreement,
    spearman,
)


def test_unweighted_kappa_matches_the_textbook_table():
    # 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no: po = 0.7, pe = 0.5, kappa = 0.4.
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohens_kappa(a, b) == pytest.approx(0.4)


def test_quadratic_kappa_equals_its_pairwise_distance_form():
    rng = np.random.default_rng(3)
    a = rng.integers(1, 6, 40)
    b = np.clip(a + rng.integers(-2, 3, 40), 1, 5)
    # For consecutive integer categories, QWK = 1 - mean((a-b)^2) / mean over all (i, j) of (a_i - b_j)^2.
    expected = 1 - np.mean((a - b) ** 2) / np.mean((a[:, None] - b[None, :]) ** 2)
    assert cohens_kappa(list(a), list(b), weights="quadratic", categories=range(1, 6)) == pytest.approx(
        expected
    )
    assert cohens_kappa([1, 2, 3], [1, 2, 3], weights="quadratic") == pytest.approx(1.0)
    assert np.isnan(cohens_kappa([3, 3], [3, 3]))
    with pytest.raises(ValueError, match="not among the categories"):
        cohens_kappa([1, 9], [1, 2], categories=[1, 2])


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    a = [1, 2, 2, 3, 5, 4, 4, 1]
    b = [2, 1, 3, 3, 5, 5, 4, 1]
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible():
    a = list(range(30))
    b = [x + (5 if x % 3 == 0 else 0) for x in a]
    est = bootstrap(spearman, a, b, n_boot=300, seed=1)
    assert est.ci_low <= est.value <= est.ci_high and est.n == 30
    assert est == bootstrap(spearman, a, b, n_boot=300, seed=1)
    assert bootstrap(spearman, a, b, n_boot=300, seed=2) != est


def test_score_agreement_from_labels_in_the_run(store, rows, rubric):
    out = run_absolute_judge(FakeBackend(responder=length_judge), store, rows, rubric)  # scores 1, 4, 1, 1
    for rid, human in zip(rows["id"], [1, 5, 2, 1], strict=True):
        store.set_label(rid, "human_score", human)
    agr = score_agreement(out, store, scale=rubric.scale, n_boot=200)
    values = dict(zip(agr["metric"], agr["value"], strict=True))
    assert values["accuracy"] == pytest.approx(0.5)
    assert values["within_one"] == pytest.approx(1.0)
    expected_kappa = cohens_kappa([1, 4, 1, 1], [1, 5, 2, 1], weights="quadratic", categories=range(1, 6))
    assert values["kappa_quadratic"] == pytest.approx(expected_kappa)
    assert values["spearman"] == pytest.approx(spearman([1, 4, 1, 1], [1, 5, 2, 1]))
    assert set(agr["n"]) == {4} and set(agr["rubric_version"]) == {rubric.version}
    # Only labelled rows count.
    store.set_label("c4", "human_score", None)
    assert set(score_agreement(out, store, n_boot=50)["n"]) == {3}


def test_compare_versions_lists_changed_rows_and_agreement_shift(store, rows, rubric):
    backend = FakeBackend(responder=length_judge)
    old = run_absolute_judge(backend, store, rows, rubric)
    v2 = rubric.edit(task_description="Be generous.")
    generous = FakeBackend(responder=lambda req: length_judge(req).replace("Score: 1", "Score: 2"))
    new = run_absolute_judge(generous, store, rows, v2)
    labels = dict(zip(rows["id"], [2, 5, 2, 2], strict=True))
    cmp = compare_versions(
        pl.concat([old, new]), rubric.version, v2.version, labels, scale=rubric.scale, n_boot=100
    )
    assert cmp.n == 4 and cmp.changed == 3
    changed = cmp.rows.filter(pl.col("changed"))["parent_id"].to_list()
    assert sorted(changed) == ["c1", "c3", "c4"]
    acc = cmp.agreement.filter(pl.col("metric") == "accuracy").to_dicts()[0]
    assert (
        acc["old"] == pytest.approx(0.0)
        and acc["new"] == pytest.approx(0.75)
        and acc["change"] == pytest.approx(0.75)
    )
    with pytest.raises(ValueError, match="versions present"):
        compare_versions(old, rubric.version, "nope")


def test_preference_agreement_counts_flips_as_ties(store, rubric):
    left = pl.DataFrame(
        {"id": ["a1", "a2", "a3"], "instruction": ["q1", "q2", "q3"], "text": ["long answer", "x", "same"]}
    )
    right = pl.DataFrame(
        {"id": ["b1", "b2", "b3"], "instruction": ["q1", "q2", "q3"], "text": ["y", "longer one", "same"]}
    )
    pairs = make_pairs(left, right)
    out = run_pairwise_judge(FakeBackend(responder=longer_pair_judge), store, pairs, rubric)
    for pid, pref in zip(pairs["pair_id"], ["A", "A", "tie"], strict=True):
        store.set_label(pid, "human_pref", pref)
    agr = preference_agreement(out, store, n_boot=100)
    values = dict(zip(agr["metric"], agr["value"], strict=True))
    assert values["accuracy"] == pytest.approx(2 / 3)
    judge, human = ["A", "B", "tie"], ["A", "A", "tie"]
    assert values["kappa"] == pytest.approx(cohens_kappa(judge, human, categories=["A", "B", "tie"]))


def test_kappa_symmetry_property():
    for a, b in itertools.islice(itertools.product([[1, 2, 3, 3], [2, 2, 3, 1]], repeat=2), 4):
        assert cohens_kappa(a, b, weights="quadratic") == pytest.approx(
            cohens_kappa(b, a, weights="quadratic")
        )
