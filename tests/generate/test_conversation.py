"""Conversations: single-turn rows extended turn by turn (user simulator, then the assistant), one row each,
with per-turn provenance and ids that survive a resume."""

from __future__ import annotations

import threading

import polars as pl
import pytest
from pydantic import ValidationError

from workbench.engine import FakeBackend, GenerationRequest, NoChatTemplateError, SamplingParams
from workbench.generate import ConversationConfig, extend_conversations
from workbench.generate.conversation import context_id, transcript
from workbench.runs import RunStore

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def completion_rows(n: int = 2) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"id": f"c{i}", "stage": "completion", "status": "kept", "parent_id": f"p{i}", "instruction": q,
             "input": "", "text": a, "model": "teacher", "model_sha": "sha-teacher", "seed": 7 + i}
            for i, (q, a) in enumerate([("Name a fruit.", "An apple."), ("Name a colour.", "Blue."),
                                        ("Name a city.", "Paris.")][:n])
        ]
    )  # fmt: skip


def scripted(req: GenerationRequest) -> str:
    """The simulator asks a follow-up that names the turn; the assistant answers the last user message."""
    if req.messages is not None and req.messages[0]["content"].startswith("You are playing the user"):
        return "User: Why is that?"  # the label is stripped
    last = req.messages[-1]["content"] if req.messages is not None else req.prompt or ""
    return f"Answer to: {last}"


def test_rows_grow_by_k_turns_with_provenance(tmp_path):
    backend = FakeBackend(responder=scripted, chat_template=CHATML)
    store = RunStore.create(tmp_path, "r")
    out = extend_conversations(backend, completion_rows(), ConversationConfig(turns=2, seed=3), store=store)
    assert out.height == 2 and set(out["stage"]) == {"conversation"} and set(out["status"]) == {"kept"}
    first = out.row(0, named=True)
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"] * 3
    assert [m["content"] for m in first["messages"]] == [
        "Name a fruit.", "An apple.", "Why is that?", "Answer to: Why is that?", "Why is that?",
        "Answer to: Why is that?",
    ]  # fmt: skip
    assert first["parent_id"] == "c0" and first["instruction"] == "Name a fruit."
    assert first["text"] == "Answer to: Why is that?" and first["source"] == "user_simulator"
    steps = [(s["role"], s["step"], s["model"]) for s in first["turn_sources"]]
    new_turn = [("user", "user_simulator", "fake"), ("assistant", "assistant", "fake")]
    assert steps == [("user", "prompt", None), ("assistant", "completion", "teacher"), *new_turn, *new_turn]
    src = first["turn_sources"]
    assert src[0]["source_id"] == "p0" and src[1]["source_id"] == "c0" and src[1]["seed"] == 7
    new_seeds = [s["seed"] for s in src[2:]]
    assert len(set(new_seeds)) == 4 and all(s["prompt_hash"] for s in src[2:])
    assert first["seed"] == src[-1]["seed"]  # the row's seed is its last turn's
    # The simulator saw the conversation so far; the assistant got the whole history as messages.
    chats = [list(c.messages or ()) for c in backend.calls]
    sim = [m for m in chats if m[0]["content"].startswith("You are playing")]
    assert "User: Name a fruit.\n\nAssistant: An apple." in sim[0][0]["content"]
    answers = [m for m in chats if m not in sim]
    assert [m["content"] for m in answers[0]] == ["Name a fruit.", "An apple.", "Why is that?"]
    assert store.rows().schema["messages"] == pl.List(pl.Struct({"role": pl.Utf8, "content": pl.Utf8}))


def test_ids_are_stable_and_a_resume_regenerates_nothing(tmp_path):
    backend = FakeBackend(chat_template=CHATML)
    store = RunStore.create(tmp_path, "r")
    cfg = ConversationConfig(turns=1, seed=5, sampling=SamplingParams(max_tokens=40))
    first = extend_conversations(backend, completion_rows(), cfg, store=store)
    calls = len(backend.calls)
    again = extend_conversations(backend, completion_rows(), cfg, store=store)
    assert len(backend.calls) == calls and again["id"].to_list() == first["id"].to_list()
    assert store.rows().height == 2
    # Same inputs without a store: the same ids and the same texts (seeds come from coordinates only).
    loose = extend_conversations(FakeBackend(chat_template=CHATML), completion_rows(), cfg)
    assert loose["id"].to_list() == first["id"].to_list() and loose["text"].to_list() == first["text"].to_list()
    doubled = extend_conversations(FakeBackend(chat_template=CHATML), pl.concat([completion_rows()] * 2), cfg)
    assert doubled["id"].to_list() == first["id"].to_list()  # a row given twice is one conversation
    other = extend_conversations(FakeBackend(chat_template=CHATML), completion_rows(), cfg.model_copy(update={"seed": 6}))
    assert set(other["id"]).isdisjoint(first["id"])


def test_a_cancelled_run_writes_only_finished_conversations_and_resumes(tmp_path):
    cancel = threading.Event()
    seen = []

    def stop_after_three(req: GenerationRequest) -> str:
        seen.append(req)
        if len(seen) == 3:  # mid second turn: conversation 0 got its user turn, 1 and 2 did not
            cancel.set()
        return "Tell me more about it."

    store = RunStore.create(tmp_path, "r")
    cfg = ConversationConfig(turns=1, seed=1)
    rows = completion_rows(3)
    part = extend_conversations(FakeBackend(responder=stop_after_three, chat_template=CHATML), rows, cfg,
                                store=store, cancel=cancel)  # fmt: skip
    assert part.height == 0 and store.rows().height == 0  # nothing half-built is written
    full = extend_conversations(FakeBackend(chat_template=CHATML), rows, cfg, store=store)
    assert full.height == 3 and store.rows()["id"].n_unique() == 3


def test_final_samples_share_the_context_and_differ_in_the_last_reply(tmp_path):
    backend = FakeBackend(chat_template=CHATML)
    cfg = ConversationConfig(turns=2, final_samples=3, seed=2)
    out = extend_conversations(backend, completion_rows(1), cfg)
    assert out.height == 3 and out["sample"].to_list() == [0, 1, 2]
    assert out["context_id"].n_unique() == 1 and out["text"].n_unique() == 3
    msgs = out["messages"].to_list()
    assert msgs[0][:-1] == msgs[1][:-1] == msgs[2][:-1]
    assert out["context_id"][0] == context_id(msgs[0]) != context_id(msgs[0][:-2])  # earlier context differs
    # 2 user turns + 1 shared answer + 3 alternative last answers
    assert len(backend.calls) == 6


def test_failed_turns_end_the_conversation_with_a_reason():
    def empty_user(req: GenerationRequest) -> str:
        return "  " if req.messages and req.messages[0]["content"].startswith("You are playing") else "Fine."

    out = extend_conversations(FakeBackend(responder=empty_user, chat_template=CHATML), completion_rows(1),
                               ConversationConfig(turns=2))  # fmt: skip
    assert out["status"].to_list() == ["dropped"] and out["reason"].to_list() == ["user turn 2 is empty"]
    assert len(out["messages"][0]) == 2  # what there was before the failure

    long = FakeBackend(chat_template=CHATML, words=50)
    cfg = ConversationConfig(turns=1, sampling=SamplingParams(max_tokens=5))
    cut = extend_conversations(long, completion_rows(1), cfg)
    assert cut["reason"].to_list() == ["user turn 2 was cut at max_tokens"]
    kept = extend_conversations(long, completion_rows(1), cfg.model_copy(update={"drop_truncated": False}))
    assert kept["status"].to_list() == ["kept"]
    assert [s["finish_reason"] for s in kept["turn_sources"].to_list()[0]][2:] == ["length", "length"]


def test_bad_input_is_refused_with_what_to_fix():
    with pytest.raises(NoChatTemplateError, match=r"no chat template.*chat/instruct GGUF"):
        extend_conversations(FakeBackend(), completion_rows(1))
    with pytest.raises(ValidationError, match="transcrip"):
        ConversationConfig(user_template="{{ transcrip }}")
    with pytest.raises(ValidationError, match="not valid Jinja"):
        ConversationConfig(user_template="{% if %}")
    no_answer = completion_rows(1).with_columns(pl.lit(None, dtype=pl.Utf8).alias("text"))
    with pytest.raises(ValueError, match="no answer in 'text'"):
        extend_conversations(FakeBackend(chat_template=CHATML), no_answer)
    open_ended = pl.DataFrame({"id": ["x"], "messages": [[{"role": "user", "content": "Hi"}]]})
    with pytest.raises(ValueError, match="must end with an assistant reply"):
        extend_conversations(FakeBackend(chat_template=CHATML), open_ended)


def test_a_base_model_can_play_the_user_through_a_plain_prompt():
    assistant = FakeBackend(chat_template=CHATML)
    user = FakeBackend(responder=lambda req: "And pears?\n")
    cfg = ConversationConfig(turns=1, user_template="{{ transcript }}\nUser:", system_prompt="Be brief.")
    out = extend_conversations(assistant, completion_rows(1), cfg, user_backend=user)
    assert user.calls[0].prompt == "User: Name a fruit.\n\nAssistant: An apple.\nUser:"  # no system line
    msgs = out["messages"].to_list()[0]
    assert msgs[0] == {"role": "system", "content": "Be brief."} and msgs[3]["content"] == "And pears?"
    assert (assistant.calls[0].messages or ())[0] == {"role": "system", "content": "Be brief."}
    assert out["turn_sources"].to_list()[0][0]["step"] == "system_prompt"


def test_a_conversation_row_extends_further_keeping_its_sources():
    backend = FakeBackend(chat_template=CHATML)
    once = extend_conversations(backend, completion_rows(1), ConversationConfig(turns=1))
    twice = extend_conversations(backend, once, ConversationConfig(turns=1))
    assert len(twice["messages"][0]) == 6 and twice["parent_id"][0] == once["id"][0]
    assert twice["turn_sources"].to_list()[0][:4] == once["turn_sources"].to_list()[0]
    assert transcript(twice["messages"].to_list()[0]).count("Assistant:") == 3


@pytest.fixture(scope="module")
def smollm2():
    from workbench.engine import load_backend

    backend = load_backend("smollm2", n_parallel=4, n_ctx_per_seq=768)
    yield backend
    backend.close()  # type: ignore[attr-defined]


@pytest.mark.model
def test_smollm2_extends_real_answers_by_two_turns(smollm2, tmp_path):
    store = RunStore.create(tmp_path, "real")
    params = SamplingParams(temperature=0.7, max_tokens=32)
    cfg = ConversationConfig(turns=2, sampling=params, drop_truncated=False, seed=11)
    out = extend_conversations(smollm2, completion_rows(2), cfg, store=store)
    assert out.height == 2 and out.filter(pl.col("status") == "error").height == 0
    for msgs, sources in zip(out["messages"].to_list(), out["turn_sources"].to_list(), strict=True):
        if len(msgs) < 6:  # a model's empty turn ends its conversation (dropped, with the reason)
            continue
        assert [m["role"] for m in msgs] == ["user", "assistant"] * 3
        assert all(m["content"].strip() and "<|im_" not in m["content"] for m in msgs)
        assert {s["model_sha"] for s in sources[2:]} == {smollm2.model_id}
    calls_before = store.rows().height
    again = extend_conversations(smollm2, completion_rows(2), cfg, store=store)
    assert again["id"].to_list() == out["id"].to_list() and store.rows().height == calls_before
