"""Magpie: the pre-query prefix comes from the model's own chat template; base models are refused."""

from __future__ import annotations

import polars as pl
import pytest

from workbench.engine import FakeBackend, NoChatTemplateError
from workbench.generate import MagpieConfig, magpie_prefix, run_magpie
from workbench.runs import RunStore

# Gemma 3's chat template as shipped in its GGUF (tool/image branches trimmed).
GEMMA3_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""

CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

QWEN_LIKE_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}"
    "{% endif %}" + CHATML_TEMPLATE
)


def test_prefix_from_real_templates():
    assert magpie_prefix(GEMMA3_TEMPLATE) == ("<start_of_turn>user\n", "<end_of_turn>")
    assert magpie_prefix(CHATML_TEMPLATE) == ("<|im_start|>user\n", "<|im_end|>")
    prefix, marker = magpie_prefix(QWEN_LIKE_TEMPLATE)
    assert prefix == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    assert marker == "<|im_end|>"


def test_base_model_is_refused_with_a_clear_message(tmp_path):
    with pytest.raises(NoChatTemplateError, match=r"no chat template.*self-instruct"):
        magpie_prefix(None, model_name="gemma-3-270m")
    with pytest.raises(NoChatTemplateError, match="Magpie"):
        run_magpie(FakeBackend(), RunStore.create(tmp_path, "r"), MagpieConfig())


def test_magpie_generates_from_prefix_and_filters(tmp_path):
    turns = iter(
        [
            "How do I keep basil alive on a windowsill?<end_of_turn>",
            "Hi",
            "Draw me a map of the city please",
            "How can I keep basil alive on my windowsill?",
            "What is a good way to learn Spanish verbs quickly?",
        ]
    )
    backend = FakeBackend(responder=lambda req: next(turns), chat_template=GEMMA3_TEMPLATE)
    store = RunStore.create(tmp_path, "m")
    rows = run_magpie(backend, store, MagpieConfig(num_prompts=5, seed=1))
    assert all(req.prompt == "<start_of_turn>user\n" for req in backend.calls)
    assert "<end_of_turn>" in backend.calls[0].params.stop
    assert (rows["source"] == "magpie").all() and store.rows().height == 5
    by_text = dict(zip(rows["text"], rows["reason"], strict=True))
    assert by_text["How do I keep basil alive on a windowsill?"] is None
    assert by_text["Hi"] == "too_short"
    assert by_text["Draw me a map of the city please"].startswith("blacklist:")
    assert by_text["How can I keep basil alive on my windowsill?"] == "near_duplicate"
    kept = rows.filter(pl.col("status") == "kept")
    assert kept.height == 2


def test_n_turns_grows_kept_user_turns_into_conversations(tmp_path):
    from workbench.generate import next_user_prefix

    turns = iter(["How do I keep basil alive on a windowsill?", "Hi there"])

    def responder(req):
        if req.messages is not None:  # the assistant answers through the chat template
            return f"Sure: {req.messages[-1]['content']}"
        if req.prompt == "<|im_start|>user\n":  # first user turns, from the bare pre-query prefix
            return next(turns)
        return "And what about mint on the same windowsill?"  # later user turns, from the conversation

    backend = FakeBackend(responder=responder, chat_template=CHATML_TEMPLATE)
    store = RunStore.create(tmp_path, "m")
    cfg = MagpieConfig(num_prompts=2, n_turns=2, seed=4)
    convs = run_magpie(backend, store, cfg)
    rows = store.rows()
    instr = rows.filter(pl.col("stage") == "instruction")
    assert instr["status"].to_list() == ["kept", "dropped"]  # "Hi there" is too short: no conversation
    assert convs.height == 1 and convs["parent_id"].to_list() == [instr["id"][0]]
    msgs = convs["messages"].to_list()[0]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert msgs[2]["content"] == "And what about mint on the same windowsill?"
    assert msgs[3]["content"] == "Sure: And what about mint on the same windowsill?"
    # The second user turn was written from the conversation rendered by the template + the user prefix.
    second = [c for c in backend.calls if c.prompt and c.prompt != "<|im_start|>user\n"]
    assert len(second) == 1 and second[0].parse_special
    assert second[0].prompt == next_user_prefix(CHATML_TEMPLATE, msgs[:2])
    assert second[0].prompt.endswith("Sure: How do I keep basil alive on a windowsill?<|im_end|>\n<|im_start|>user\n")
    assert "<|im_end|>" in second[0].params.stop
    sources = convs["turn_sources"].to_list()[0]
    assert [(s["role"], s["step"]) for s in sources] == [
        ("user", "magpie"), ("assistant", "assistant"), ("user", "magpie"), ("assistant", "assistant")
    ]
    assert sources[0]["source_id"] == instr["id"][0] and sources[0]["seed"] == instr["seed"][0]
    assert convs["source"].to_list() == ["magpie"] and convs["prompt"].to_list() == ["<|im_start|>user\n"]
    # Resume: the same config regenerates nothing and returns the same conversation.
    calls = len(backend.calls)
    again = run_magpie(backend, store, cfg)
    assert len(backend.calls) == calls and again["id"].to_list() == convs["id"].to_list()


def test_n_turns_on_a_base_model_is_refused(tmp_path):
    with pytest.raises(NoChatTemplateError, match=r"no chat template.*Magpie"):
        run_magpie(FakeBackend(), RunStore.create(tmp_path, "r"), MagpieConfig(n_turns=3))
