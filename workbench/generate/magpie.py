"""Magpie (Xu et al., 2024): a chat model, given only its template's pre-query prefix (the text that opens a
user turn), writes a plausible user request itself. No seeds are needed; the same filters as self-instruct
decide what joins the pool.

The prefix is read from the model's own chat template: we render a conversation with one user message
holding a sentinel and cut the text at the sentinel. A base model has no template, so Magpie does not apply.

With `n_turns` > 1, every kept user turn grows into a conversation (one "conversation" row each, see
`workbench.generate.conversation`): the model answers through its chat template, then writes the next
user message itself from the conversation so far rendered by the template and cut at the next user
message's start (the same sentinel trick), and so on until the conversation has n_turns user turns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from ..engine.chat import render_chat
from ..engine.errors import NoChatTemplateError
from ..engine.params import GenerationRequest, SamplingParams
from ..engine.protocol import Backend
from ..engine.results import Generation, Progress
from ..filters.text_filters import DEFAULT_BLACKLIST, TextFilterConfig
from ..runs import RowWriter, RunStore, content_hash, row_id
from .conversation import Conversation, conversation_row, require_chat, take_turn, turn_seed
from .seeds import load_seeds
from .selfinstruct.candidates import CandidateLoop, ProgressTracker, next_order, pool_id
from .selfinstruct.decide import PoolFilter
from .selfinstruct.parsing import parse_instruction
from .selfinstruct.prompts import request_seed

__all__ = ["MagpieConfig", "magpie_prefix", "next_user_prefix", "run_magpie"]

_SENTINEL = "\u2063MAGPIE_USER_QUERY\u2063"


class MagpieConfig(BaseModel):
    """Knobs of a Magpie run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_prompts: int = Field(8, ge=1)
    """How many user turns to sample from the prefix."""
    sampling: SamplingParams = SamplingParams(temperature=1.0, top_p=1.0, min_p=0.0, max_tokens=64)
    """Sampling parameters; the end-of-turn marker from the template is added to the stop strings."""
    similarity_threshold: float = Field(0.7, ge=0.0, le=1.0)
    """Drop a user turn whose ROUGE-L F1 against any pool instruction is strictly above this."""
    min_words: int = Field(4, ge=0)
    """Drop turns with fewer words than this."""
    max_words: int = Field(150, ge=1)
    """Drop turns with more words than this."""
    blacklist: tuple[str, ...] = DEFAULT_BLACKLIST
    """Words or phrases that drop a turn (the self-instruct list)."""
    seed: int = Field(0, ge=0, lt=2**32)
    """Run seed: derives every request's sampling seed."""
    n_turns: int = Field(1, ge=1, le=16)
    """User turns per conversation. 1: user turns only (instruction rows, as in the paper); more: each
    kept user turn becomes a conversation row with n_turns user turns and as many answers."""
    answer_sampling: SamplingParams = SamplingParams(temperature=0.7, max_tokens=128)
    """Sampling of the assistant's answers inside conversations (n_turns > 1)."""
    drop_truncated: bool = True
    """n_turns > 1: a turn cut at max_tokens ends its conversation as dropped (else it is kept, the cut
    recorded in that turn's `finish_reason`)."""


def magpie_prefix(chat_template: str | None, *, model_name: str = "this model") -> tuple[str, str]:
    """(pre-query prefix, end-of-user-turn marker) read from a chat template.

    The prefix is everything the template writes before a user message's content (any default system
    prompt included); the marker is the first line the template writes after it (e.g. "<end_of_turn>")."""
    prefix, after = _split_at_user(chat_template, [], model_name)
    marker = next((line.strip() for line in after.splitlines() if line.strip()), "")
    return prefix, marker


def next_user_prefix(
    chat_template: str | None, messages: list[dict[str, str]], *, model_name: str = "this model"
) -> str:
    """The conversation `messages` rendered by the template, followed by the opening of the next user
    message: from this text the model writes the user's next turn."""
    return _split_at_user(chat_template, messages, model_name)[0]


def _split_at_user(
    chat_template: str | None, history: list[dict[str, str]], model_name: str
) -> tuple[str, str]:
    if not chat_template:
        raise NoChatTemplateError(
            f"{model_name} has no chat template (a base model), so Magpie cannot run: its prefix comes from "
            "the template. Load a chat/instruct GGUF, or use self-instruct (run_self_instruct) instead."
        )
    text = render_chat(
        chat_template,
        [*history, {"role": "user", "content": _SENTINEL}],
        bos_token="",  # the engine adds BOS itself when the model wants one
        eos_token="",
        add_generation_prompt=False,
        model_name=model_name,
    )
    if _SENTINEL not in text:
        raise NoChatTemplateError(
            f"the chat template of {model_name} does not place the user's message in its output"
        )
    prefix, _, after = text.partition(_SENTINEL)
    return prefix, after


def run_magpie(
    backend: Backend,
    store: RunStore,
    config: MagpieConfig,
    *,
    seeds: pl.DataFrame | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> pl.DataFrame:
    """Sample user turns from the backend's pre-query prefix and filter them against `seeds` (optional)
    plus each other. Rows (stage "instruction", source "magpie") go to the run as they are decided.

    Returns the instruction rows; with `config.n_turns` > 1, the conversation rows grown from the kept
    ones (stage "conversation", parent_id = the instruction row), written when each is complete."""
    prefix, marker = magpie_prefix(backend.chat_template, model_name=backend.name)
    stops = tuple(dict.fromkeys([*config.sampling.stop, *([marker] if marker else [])]))
    params = config.sampling.model_copy(update={"stop": stops})
    params_json = params.as_json()
    model = backend.model_id
    seed_frame = load_seeds(seeds) if seeds is not None else None
    seed_ids = seed_frame["id"].to_list() if seed_frame is not None else []
    pool = PoolFilter(
        seed_frame["instruction"].to_list() if seed_frame is not None else [],
        seed_ids,
        threshold=config.similarity_threshold,
        text_config=_text_config(config),
    )
    existing = store.rows()
    stored = (
        {r["id"]: r for r in existing.filter(pl.col("stage") == "instruction").to_dicts()}
        if existing.height
        else {}
    )
    base = {
        "model": backend.name,
        "model_sha": model,
        "params": params_json,
        "run_seed": config.seed,
        "pool_id": pool_id("magpie", model, config.seed, seed_ids),
        "stage": "instruction",
        "parent_id": None,
        "round": 1,
        "source": "magpie",
        "prompt": prefix,
        "is_classification": False,
        "example_ids": [],
    }
    metas: list[dict[str, Any]] = []
    for i in range(config.num_prompts):
        seed = request_seed(config.seed, "magpie", i)
        rid = row_id("instruction", None, prefix, {"params": params_json, "model": model}, seed)
        metas.append({"id": rid, "seed": seed, "prompt_index": i})

    def request(meta: dict[str, Any]) -> GenerationRequest:
        return GenerationRequest(
            prompt=prefix, parse_special=True, params=params.with_seed(meta["seed"]), key=meta["id"]
        )

    tracker = ProgressTracker(config.num_prompts, on_progress)
    with RowWriter(store) as writer:
        loop = CandidateLoop(backend, writer, pool, tracker, cancel, first_order=next_order(existing))
        loop.run(metas, stored, request, _parse_turn, base)
    if config.n_turns > 1:
        kept = [r for r in loop.rows if r.get("status") == "kept"]
        return _magpie_conversations(backend, store, kept, config, prefix, params, on_progress, cancel)
    return store.rows_by_id(r["id"] for r in loop.rows)


def _magpie_conversations(
    backend: Backend,
    store: RunStore,
    kept: list[dict[str, Any]],
    config: MagpieConfig,
    prefix: str,
    user_params: SamplingParams,
    on_progress: Callable[[Progress], None] | None,
    cancel: threading.Event | None,
) -> pl.DataFrame:
    """Grow each kept user turn into a conversation of `config.n_turns` user turns (and answers)."""
    require_chat(backend, "answer in a Magpie conversation")
    template = backend.chat_template
    identity = {
        "model": backend.model_id,
        "params": user_params.as_record(),
        "answer_params": config.answer_sampling.as_record(),
        "n_turns": config.n_turns,
        "drop_truncated": config.drop_truncated,
    }
    have = store.ids("conversation")
    convs, skeletons = [], {}
    for row in kept:
        rid = row_id("conversation", row["id"], prefix, identity, config.seed)
        skeletons[row["id"]] = {
            "id": rid, "stage": "conversation", "parent_id": row["id"], "round": row.get("round"),
            "prompt": prefix, "model": backend.name, "model_sha": backend.model_id, "model_id": backend.model_id,
            "params": config.answer_sampling.as_json(), "run_seed": config.seed, "source": "magpie",
        }  # fmt: skip
        if rid in have:
            continue
        first = {"role": "user", "step": "magpie", "model": backend.name, "model_sha": backend.model_id,
                 "seed": row.get("seed"), "prompt_hash": content_hash(prefix),
                 "finish_reason": row.get("finish_reason"), "source_id": row["id"]}  # fmt: skip
        convs.append(Conversation(row["id"], [{"role": "user", "content": row["text"]}], [first]))
    tracker = ProgressTracker(len(convs) * (2 * config.n_turns - 1), on_progress)

    def ask_user(conv: Conversation, seed: int) -> tuple[GenerationRequest, str]:
        text = next_user_prefix(template, conv.messages, model_name=backend.name)
        req = GenerationRequest(prompt=text, parse_special=True, params=user_params.with_seed(seed), key=conv.key)
        return req, content_hash(text)

    def answer(conv: Conversation, seed: int) -> tuple[GenerationRequest, str]:
        msgs = tuple(dict(m) for m in conv.messages)
        req = GenerationRequest(messages=msgs, params=config.answer_sampling.with_seed(seed), key=conv.key)
        return req, content_hash(list(msgs))

    def turn(role: Literal["user", "assistant"]) -> None:
        make = ask_user if role == "user" else answer
        take_turn(backend, convs, role, "magpie" if role == "user" else "assistant", make,
                  seed_of=lambda c: turn_seed(config.seed, c, role), clean=_collapse,
                  drop_truncated=config.drop_truncated, tracker=tracker, cancel=cancel)  # fmt: skip

    turn("assistant")
    for _ in range(config.n_turns - 1):
        turn("user")
        turn("assistant")
    out = [conversation_row(c, skeletons[c.key]) for c in convs if not c.cancelled]
    if out:
        with RowWriter(store) as writer:
            for r in out:
                writer.add(r)
    return store.rows_by_id(skeletons[r["id"]]["id"] for r in kept)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _parse_turn(gen: Generation) -> tuple[str, str | None]:
    """A user turn is the whole output, whitespace collapsed; only truncation is a parse failure."""
    text = " ".join(gen.text.split())
    _, reason = parse_instruction(text, gen.finish_reason)
    return text, reason if reason == "truncated" else None


def _text_config(config: MagpieConfig) -> TextFilterConfig:
    return TextFilterConfig(
        min_words=config.min_words, max_words=config.max_words, blacklist=config.blacklist, banned_prefixes=()
    )
