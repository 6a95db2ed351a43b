"""One run, many steps: the bugs of issue 12, each reproduced with the fake backend."""

from __future__ import annotations

import polars as pl

from workbench.engine import FakeBackend, GenerationRequest
from workbench.generate.seeds import default_seeds
from workbench.generate.selfinstruct import SelfInstructConfig, apply_similarity_threshold, run_self_instruct
from workbench.judge import Rubric, make_pairs, run_pairwise_judge
from workbench.runs import RunStore

SEEDS = default_seeds()
RUBRIC = Rubric(name="helpful", levels={1: "bad", 2: "weak", 3: "ok", 4: "good", 5: "great"})


def _judge_or_text(req: GenerationRequest) -> str | None:
    text = req.prompt if req.prompt is not None else req.messages[-1]["content"]  # type: ignore[index]
    if "Response A:" in text:
        return " The first.\nWinner: A"
    return None


def responder(req: GenerationRequest) -> str:
    verdict = _judge_or_text(req)
    if verdict is not None:
        return verdict
    from workbench.engine.fake import fake_text

    return " " + fake_text(req.prompt or "", req.params.seed or 0, 9)


def test_self_instruct_after_a_pairwise_judge_in_the_same_run(tmp_path):
    """Issue 12, bug 1: self-instruct, a pairwise judge of 2 pairs, then self-instruct with a larger target
    raised `conversion from str to i64 failed in column 'order'` (the pairwise 'AB'/'BA' and the decision
    order shared one column)."""
    store = RunStore.create(tmp_path, "run")
    backend = FakeBackend(responder=responder)
    small = SelfInstructConfig(
        num_instructions=6, rounds=2, prompts_per_round=6, seed=1, generate_instances=False
    )
    first = run_self_instruct(backend, store, small, seeds=SEEDS)
    kept = first.filter(pl.col("status") == "kept")
    assert kept.height >= 4
    left = kept.head(2).select("id", pl.col("text").alias("answer"), pl.lit("Q").alias("instruction"))
    right = kept.slice(2, 2).select("id", pl.col("text").alias("answer"), pl.lit("Q").alias("instruction"))
    pairs = make_pairs(left.rename({"answer": "text"}), right.rename({"answer": "text"}))
    judged = run_pairwise_judge(backend, store, pairs.head(2), RUBRIC)
    assert judged.height == 4

    bigger = small.model_copy(update={"num_instructions": 12, "rounds": 4})
    again = run_self_instruct(backend, store, bigger, seeds=SEEDS)
    rows = store.rows()
    assert rows["id"].n_unique() == rows.height  # nothing written twice
    inst = rows.filter(pl.col("stage") == "instruction")
    assert again.filter(pl.col("stage") == "instruction").height == inst.height
    # The decision order is an integer column and the threshold replay sorts it numerically.
    assert rows.schema["decision_order"] == pl.Int64
    assert sorted(inst["decision_order"].to_list()) == list(range(inst.height))
    replay = apply_similarity_threshold(rows, 0.7)
    assert replay.filter(pl.col("stage") == "instruction")["status"].to_list() == inst["status"].to_list()
    # The pairwise judge's presentation order has its own name and type.
    pw = rows.filter(pl.col("stage") == "judgment")
    assert sorted(pw["pair_order"].to_list()) == ["AB", "AB", "BA", "BA"]


# -- bug 2: exports pick a rubric version ------------------------------------------------------------
def _length_score(req: GenerationRequest) -> str:
    """Absolute judge: longer answers score higher; a rubric mentioning 'strict' scores one lower."""
    import re

    text = req.prompt if req.prompt is not None else req.messages[-1]["content"]  # type: ignore[index]
    m = re.search(r"Response to grade:\n(.*?)(?:\n\n|\nFeedback:|\Z)", text, re.S)
    score = min(5, 1 + len(m.group(1) if m else "") // 12)
    if "STRICT" in text:
        score = max(1, score - 1)
    return f" Judged.\nScore: {score}"


def _two_version_run(tmp_path, v2_rows: int | None = None):
    from workbench.generate.completions import CompletionConfig, run_completions
    from workbench.judge import run_absolute_judge

    store = RunStore.create(tmp_path, "run")
    prompts = pl.DataFrame({"instruction": ["Write a poem about tea", "List three fruits", "Explain rain"]})

    def varied(req: GenerationRequest) -> str:  # answers of 3 lengths, so the length judge separates them
        return "An answer" + " that goes on" * (3 * ((req.params.seed or 0) % 3)) + "."

    answers = run_completions(FakeBackend(responder=varied), store, prompts, CompletionConfig(k=3, seed=2))
    judge = FakeBackend(responder=_length_score)
    v1 = RUBRIC
    v2 = v1.edit(task_description="Be STRICT.")
    run_absolute_judge(judge, store, answers, v1)
    run_absolute_judge(judge, store, answers.head(v2_rows) if v2_rows else answers, v2)
    return store, v1, v2


def test_dpo_export_after_a_rubric_edit_uses_the_latest_version(tmp_path):
    """Issue 12, bug 2: judging again after a rubric edit made the DPO export raise 'several versions';
    it now uses the latest version unless told otherwise, and the card says which."""
    from workbench.export import ExportSpec, export_run, load_export

    store, v1, v2 = _two_version_run(tmp_path)
    res = export_run(store, ExportSpec(format="dpo", path=str(tmp_path / "dpo")))
    ds = load_export(res.path)
    assert len(ds) > 0 and set(ds["rubric_version"]) == {v2.version}
    card = (res.path / "README.md").read_text()
    assert f"rubric `helpful` version `{v2.version}`" in card and "latest" in card
    old = export_run(store, ExportSpec(format="dpo", path=str(tmp_path / "dpo1"), rubric_version=v1.version))
    assert set(load_export(old.path)["rubric_version"]) == {v1.version}


def test_sft_min_score_never_mixes_rubric_versions(tmp_path):
    """Issue 12, bug 2: SFT with min_score kept the last judgment of each row whatever its version (here
    v2 judged only 4 of the 9 answers, so the other 5 came with their v1 scores)."""
    from workbench.export import ExportSpec, export_run
    from workbench.judge import judgments_in

    store, v1, v2 = _two_version_run(tmp_path, v2_rows=4)
    judged = judgments_in(store, "absolute")
    latest = export_run(store, ExportSpec(format="sft", path=str(tmp_path / "sft"), min_score=1)).frame
    by_v2 = judged.filter(pl.col("rubric_version") == v2.version)
    assert set(latest["rubric_version"]) == {v2.version}
    assert set(latest["id"]) == set(by_v2["parent_id"])
    spec = ExportSpec(format="sft", path=str(tmp_path / "sft1"), min_score=3, rubric_version=v1.version)
    frame = export_run(store, spec).frame
    by_v1 = judged.filter((pl.col("rubric_version") == v1.version) & (pl.col("score") >= 3))
    assert set(frame["id"]) == set(by_v1["parent_id"]) and set(frame["rubric_version"]) == {v1.version}


# -- bug 3: model identity in row ids ---------------------------------------------------------------
class OtherFake(FakeBackend):
    @property
    def name(self) -> str:
        return "other-fake"

    @property
    def model_id(self) -> str:
        return "fake:1"


def test_self_instruct_after_a_model_switch_generates_with_the_new_model(tmp_path):
    """Issue 12, bug 3: self-instruct ids left out the model, so after a switch Run replayed the old
    model's rows and generated nothing."""
    store = RunStore.create(tmp_path, "run")
    cfg = SelfInstructConfig(
        num_instructions=4, rounds=1, prompts_per_round=4, seed=1, generate_instances=False
    )
    run_self_instruct(FakeBackend(responder=responder), store, cfg, seeds=SEEDS)
    other = OtherFake(responder=responder)
    rows = run_self_instruct(other, store, cfg, seeds=SEEDS)
    assert len(other.calls) == 4
    assert set(rows["model_sha"]) == {"fake:1"}
    stored = store.rows()
    assert stored.height == 8 and stored["id"].n_unique() == 8


def test_endpoint_identity_is_never_its_url():
    from workbench.engine.http import OpenAIHTTPBackend

    a = OpenAIHTTPBackend("http://127.0.0.1:8001", model="gemma-3-270m")
    b = OpenAIHTTPBackend("http://127.0.0.1:9002/v1", model="gemma-3-270m")
    assert a.model_id == b.model_id and "127.0.0.1" not in a.model_id and "gemma-3-270m" in a.model_id
    named = OpenAIHTTPBackend("http://10.0.0.1:8000", model="served", model_identity="qwen2.5-7b-q4_k_m")
    assert named.model_id == "qwen2.5-7b-q4_k_m"
    assert "10.0.0.1" not in named.name
    for backend in (a, b, named):
        backend.close()
