"""Conversation rows export in TRL's conversational layouts: SFT messages, prompt-completion and DPO with the
shared context as the prompt; the files load back with `datasets` in exactly those columns."""

from __future__ import annotations

import polars as pl
import pytest
from datasets import load_dataset

from workbench.engine import FakeBackend
from workbench.export import ExportSpec, export_run
from workbench.generate import ConversationConfig, extend_conversations
from workbench.runs import RunStore

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
PROVENANCE = ["id", "parent_id", "model", "model_sha", "params", "seed"]
SCORES = ["rubric", "rubric_version", "score", "expected_score"]


@pytest.fixture
def conversation_run(tmp_path):
    """Two completions extended by one turn with 2 alternative last replies each, and a score per row."""
    store = RunStore.create(tmp_path / "runs", "r")
    parents = pl.DataFrame(
        {"id": ["c0", "c1"], "stage": ["completion"] * 2, "status": ["kept"] * 2,
         "instruction": ["Name a fruit.", "Name a colour."], "input": ["", ""], "text": ["An apple.", "Blue."]}
    )  # fmt: skip
    convs = extend_conversations(FakeBackend(chat_template=CHATML), parents,
                                 ConversationConfig(turns=1, final_samples=2, seed=1), store=store)  # fmt: skip
    store.append(
        [
            {"id": f"j{i}", "stage": "judgment", "parent_id": cid, "score": s, "rubric": "helpful",
             "rubric_version": "abc123abc123", "judge_kind": "absolute", "parse_ok": True, "status": "kept"}
            for i, (cid, s) in enumerate(zip(convs["id"], [5, 2, 3, 3], strict=True))
        ]
    )  # fmt: skip
    return store, convs


def _load(path, kind):
    file = path / "data" / ("train.parquet" if kind == "parquet" else "train.jsonl")
    return load_dataset("parquet" if kind == "parquet" else "json", data_files=str(file), split="train")


@pytest.mark.parametrize("kind", ["parquet", "jsonl"])
def test_sft_is_the_whole_conversation(conversation_run, tmp_path, kind):
    store, convs = conversation_run
    spec = ExportSpec(format="sft", stage="conversation", kind=kind, path=str(tmp_path / f"sft-{kind}"))
    ds = _load(export_run(store, spec).path, kind)
    assert ds.column_names == ["messages", *PROVENANCE, *SCORES, "turn_sources", "context_id"]
    assert len(ds) == 4
    row = convs.row(0, named=True)
    first = next(r for r in ds if r["id"] == row["id"])
    assert first["messages"] == row["messages"]  # [{role, content}] x 4, nothing else per message
    assert [m["role"] for m in first["messages"]] == ["user", "assistant", "user", "assistant"]
    assert [s["step"] for s in first["turn_sources"]] == ["prompt", "completion", "user_simulator", "assistant"]


def test_sft_system_prompt_goes_first_once(conversation_run, tmp_path):
    store, _ = conversation_run
    spec = ExportSpec(format="sft", stage="conversation", path=str(tmp_path / "sys"), system_prompt="Be kind.")
    frame = export_run(store, spec).frame
    for msgs in frame["messages"].to_list():
        assert msgs[0] == {"role": "system", "content": "Be kind."} and len(msgs) == 5


@pytest.mark.parametrize("kind", ["parquet", "jsonl"])
def test_dpo_is_conversational_with_the_shared_context_as_prompt(conversation_run, tmp_path, kind):
    store, convs = conversation_run
    spec = ExportSpec(format="dpo", stage="conversation", conversational=True, kind=kind,
                      path=str(tmp_path / f"dpo-{kind}"))  # fmt: skip
    ds = _load(export_run(store, spec).path, kind)
    assert ds.column_names[:3] == ["prompt", "chosen", "rejected"]
    assert len(ds) == 1  # conversation 2's replies tie (3 vs 3): no pair
    pair = ds[0]
    best = convs.row(0, named=True)  # score 5 beats its sibling's 2
    worse = convs.row(1, named=True)
    assert best["context_id"] == worse["context_id"]
    assert pair["prompt"] == best["messages"][:-1]  # user, assistant, user: everything before the reply
    assert [m["role"] for m in pair["prompt"]] == ["user", "assistant", "user"]
    assert pair["chosen"] == [{"role": "assistant", "content": best["text"]}]
    assert pair["rejected"] == [{"role": "assistant", "content": worse["text"]}]
    assert pair["chosen_id"] == best["id"] and pair["rejected_id"] == worse["id"]


def test_prompt_completion_splits_off_the_last_reply(conversation_run, tmp_path):
    store, convs = conversation_run
    spec = ExportSpec(format="prompt_completion", stage="conversation", conversational=True,
                      kind="parquet", path=str(tmp_path / "pc"))  # fmt: skip
    ds = _load(export_run(store, spec).path, "parquet")
    assert ds.column_names[:2] == ["prompt", "completion"]
    row = convs.row(0, named=True)
    first = next(r for r in ds if r["id"] == row["id"])
    assert first["prompt"] == row["messages"][:-1] and first["completion"] == [row["messages"][-1]]


def test_plain_strings_cannot_hold_a_conversation(conversation_run, tmp_path):
    store, _ = conversation_run
    for fmt in ("dpo", "prompt_completion"):
        spec = ExportSpec(format=fmt, stage="conversation", path=str(tmp_path / fmt))
        with pytest.raises(ValueError, match="conversational=True"):
            export_run(store, spec)


def test_pairs_across_contexts_are_refused(conversation_run):
    from workbench.export import dpo_frame
    from workbench.judge import build_dpo_pairs

    store, convs = conversation_run
    rows = store.rows()
    judgments = rows.filter(pl.col("stage") == "judgment")
    # Grouped by parent only, two replies of *different* contexts could be paired; here each parent has
    # one context, so make one by hand: the best of conversation 1 against the worst of conversation 2.
    pairs = build_dpo_pairs(judgments, convs, min_margin=1, group_column="context_id")
    crossed = pairs.with_columns(pl.lit(convs["id"][3]).alias("rejected_id"))
    with pytest.raises(ValueError, match="share the context"):
        dpo_frame(crossed, convs, judgments, conversational=True)
