"""Multi-turn conversations: extend single-turn rows (instruction + answer) turn by turn.

Each extra turn is two model calls: a user simulator (a sandboxed Jinja prompt, editable, shown the
conversation so far) writes the next user message, then the assistant model answers it through its own
chat template. Every conversation is ONE row (stage "conversation") holding `messages` (TRL's
[{role, content}] layout) and `turn_sources`, one entry per message saying which step, model, seed and
prompt (hash) wrote it, so a turn copied from the parent row is told apart from one written here.

All conversations advance together, one batched `generate` per turn. Seeds derive from the run seed and
the turn's coordinates (parent id, message index, role, sample), never from batch order; row ids hash
the parent, its messages, the models' identities and the whole config, so a resumed run skips what it
has. A conversation cancelled midway is not written (a later call regenerates it from the same seeds).

With `final_samples` > 1 the last assistant turn is sampled several times: the rows share everything
before it (same `context_id`), which makes them DPO candidates once a judge scores the last reply.
Magpie's `n_turns` (workbench.generate.magpie) uses the same turn machinery with its own user turns.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..engine import Backend, GenerationRequest, NoChatTemplateError, SamplingParams
from ..engine.results import Generation, Progress
from ..runs import RowWriter, RunStore, content_hash, normalise_rows, row_id
from .completions import compile_template, render_template
from .samplers import check_template_names
from .selfinstruct.candidates import ProgressTracker
from .selfinstruct.prompts import request_seed

__all__ = [
    "DEFAULT_USER_SIMULATOR_TEMPLATE",
    "USER_SIMULATOR_VARIABLES",
    "Conversation",
    "ConversationConfig",
    "context_id",
    "conversation_row",
    "extend_conversations",
    "require_chat",
    "start_conversation",
    "take_turn",
    "transcript",
    "turn_seed",
]

Message = dict[str, str]

DEFAULT_USER_SIMULATOR_TEMPLATE = """\
You are playing the user in a conversation with an AI assistant. Here is the conversation so far:

{{ transcript }}

Write the user's next message: a natural follow-up that continues this conversation (a question about \
the answer, a request for more detail, or a related new request). Write only the message itself."""

USER_SIMULATOR_VARIABLES = ("transcript", "messages", "turn", "first_user")
"""What the user-simulator template gets: the conversation as text ("User: ... / Assistant: ..."), as a
list of {role, content}, the number of the user turn being written (2 = the first follow-up), and the
first user message."""

_ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}
_SOURCE_KEYS = ("role", "step", "model", "model_sha", "seed", "prompt_hash", "finish_reason", "source_id")


def transcript(messages: Sequence[Message]) -> str:
    """A conversation as plain text: "User: ...", "Assistant: ..." blocks separated by blank lines."""
    return "\n\n".join(f"{_ROLE_LABELS.get(m['role'], m['role'])}: {m['content']}" for m in messages)


def context_id(messages: Sequence[Message]) -> str:
    """Hash of the messages before the last assistant reply (all of them when there is none)."""
    cut = next((i for i in range(len(messages) - 1, -1, -1) if messages[i]["role"] == "assistant"), None)
    before = messages[:cut] if cut is not None else messages
    return content_hash([[m["role"], m["content"]] for m in before])


def require_chat(backend: Backend, what: str) -> None:
    """Refuse a base model as the assistant of a conversation, saying what to do instead."""
    if backend.chat_template is None:
        raise NoChatTemplateError(
            f"{backend.name} has no chat template (a base model), so it cannot {what}: a conversation's "
            "turns go through the model's own chat template. Load a chat/instruct GGUF (e.g. "
            "load_backend('smollm2'))."
        )


def _source(role: str, step: str, **fields: Any) -> dict[str, Any]:
    return {key: (role if key == "role" else step if key == "step" else fields.get(key)) for key in _SOURCE_KEYS}


@dataclass
class Conversation:
    """One conversation being built: its messages, who wrote each, and whether it failed."""

    key: str
    """The parent row's id: turn seeds derive from it."""
    messages: list[Message]
    sources: list[dict[str, Any]]
    sample: int = 0
    """Which alternative last reply this is (0 until the last assistant turn fans out)."""
    failure: tuple[str, str] | None = None
    """(status, reason) once a turn failed: 'error' (the engine failed) or 'dropped' (empty, cut)."""
    cancelled: bool = False
    prompt_tokens: int = 0  # summed over the turns written here, like completion_tokens and seconds
    completion_tokens: int = 0
    seconds: float = 0.0
    finish_reason: str | None = None  # of the last turn

    @property
    def live(self) -> bool:
        return self.failure is None and not self.cancelled

    def fork(self, sample: int) -> Conversation:
        """A copy that will get its own last reply (sample index `sample`)."""
        return replace(self, messages=list(self.messages), sources=list(self.sources), sample=sample)


# (conversation, seed) -> (request, hash of the exact prompt it sends)
RequestMaker = Callable[[Conversation, int], tuple[GenerationRequest, str]]


def take_turn(
    backend: Backend,
    convs: Sequence[Conversation],
    role: Literal["user", "assistant"],
    step: str,
    make: RequestMaker,
    *,
    seed_of: Callable[[Conversation], int],
    clean: Callable[[str], str] = str.strip,
    drop_truncated: bool = True,
    tracker: ProgressTracker | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """One turn (`role`) for every live conversation, as one batched `generate`. A failed turn ends its
    conversation with a status and a reason naming the turn; a cancelled one is marked, not written."""
    live = [c for c in convs if c.live]
    if not live:
        return
    if cancel is not None and cancel.is_set():
        for c in live:
            c.cancelled = True
        return
    seeds = [seed_of(c) for c in live]
    made = [make(c, s) for c, s in zip(live, seeds, strict=True)]
    gens = backend.generate(
        [r for r, _ in made], on_progress=tracker.batch_progress if tracker else None, cancel=cancel
    )
    if tracker is not None:
        tracker.end_batch()
    for conv, seed, (_, prompt_hash), gen in zip(live, seeds, made, gens, strict=True):
        _record(conv, role, step, backend, seed, prompt_hash, gen, clean, drop_truncated)
        if tracker is not None and not conv.cancelled:
            tracker.row_done(error=not gen.ok)


def _record(conv: Conversation, role: str, step: str, backend: Backend, seed: int, prompt_hash: str,
            gen: Generation, clean: Callable[[str], str], drop_truncated: bool) -> None:  # fmt: skip
    if gen.finish_reason == "cancelled":
        conv.cancelled = True
        return
    number = 1 + sum(m["role"] == role for m in conv.messages)
    conv.prompt_tokens += gen.prompt_tokens
    conv.completion_tokens += gen.completion_tokens
    conv.seconds += gen.seconds
    conv.finish_reason = gen.finish_reason
    if not gen.ok:
        conv.failure = ("error", f"{role} turn {number}: {gen.error or gen.finish_reason}")
        return
    text = clean(gen.text)
    if not text:
        conv.failure = ("dropped", f"{role} turn {number} is empty")
        return
    conv.messages.append({"role": role, "content": text})
    written = {"model": backend.name, "model_sha": backend.model_id, "seed": seed,
               "prompt_hash": prompt_hash, "finish_reason": gen.finish_reason}  # fmt: skip
    conv.sources.append(_source(role, step, **written))
    if gen.finish_reason == "length" and drop_truncated:
        conv.failure = ("dropped", f"{role} turn {number} was cut at max_tokens")


def conversation_row(conv: Conversation, skeleton: dict[str, Any]) -> dict[str, Any]:
    """A finished (or failed) conversation as a run row; `text` is its last assistant reply."""
    status, reason = conv.failure or ("kept", None)
    last = next((m["content"] for m in reversed(conv.messages) if m["role"] == "assistant"), "")
    first_user = next((m["content"] for m in conv.messages if m["role"] == "user"), "")
    return {
        **skeleton,
        "messages": [{"role": m["role"], "content": m["content"]} for m in conv.messages],
        "turn_sources": [{k: s.get(k) for k in _SOURCE_KEYS} for s in conv.sources],
        "context_id": context_id(conv.messages),
        "instruction": first_user,
        "text": last,
        "sample": conv.sample,
        "seed": conv.sources[-1].get("seed") if conv.sources else None,  # the last turn's seed
        "status": status,
        "reason": reason,
        "finish_reason": conv.finish_reason,
        "prompt_tokens": conv.prompt_tokens,
        "completion_tokens": conv.completion_tokens,
        "seconds": conv.seconds,
    }


def turn_seed(run_seed: int, conv: Conversation, role: str) -> int:
    """The sampling seed of the next `role` turn: the run seed and the turn's coordinates only."""
    return request_seed(run_seed, "conversation", conv.key, len(conv.messages), role, conv.sample)


# -- extending rows ------------------------------------------------------------------------------------------


class ConversationConfig(BaseModel):
    """How single-turn rows are extended into conversations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    turns: int = Field(1, ge=1, le=16)
    """Extra turns (k) to add: each is a user message from the simulator, then the assistant's answer."""
    user_template: str = DEFAULT_USER_SIMULATOR_TEMPLATE
    """Sandboxed Jinja prompt of the user simulator; variables: `transcript`, `messages`, `turn`,
    `first_user` (see USER_SIMULATOR_VARIABLES). Its output is the next user message."""
    sampling: SamplingParams = SamplingParams(temperature=0.7, max_tokens=128)
    """Sampling of the assistant's answers (the seed is replaced per turn)."""
    user_sampling: SamplingParams | None = None
    """Sampling of the user simulator (None: the same as `sampling`)."""
    user_prompt_style: Literal["auto", "chat", "completion"] = "auto"
    """How the simulator prompt reaches the user model: 'chat' as one user message (needs a chat
    template), 'completion' as plain text; 'auto' picks chat when the user model has a template."""
    system_prompt: str = ""
    """System message for the assistant, put first in the conversation when the parent row has none
    (empty: none)."""
    final_samples: int = Field(1, ge=1, le=16)
    """Alternative answers to the last user turn, one row each, sharing everything before it (their
    `context_id`): 2 or more make DPO candidates once a judge scores them."""
    drop_truncated: bool = True
    """A turn cut at max_tokens ends its conversation as dropped (else it is kept, the cut recorded in
    the turn's `finish_reason`)."""
    seed: int = Field(0, ge=0, lt=2**32)
    """Run seed: every turn's sampling seed derives from it and the turn's coordinates."""

    @field_validator("user_template")
    @classmethod
    def _template_ok(cls, value: str) -> str:
        compile_template(value)
        check_template_names(value, USER_SIMULATOR_VARIABLES, "user_template")
        return value


def start_conversation(row: dict[str, Any], system_prompt: str = "") -> Conversation:
    """The conversation a row already holds: its `messages` (a conversation row), else its user turn
    (`instruction` + `input`, or `prompt`) and answer (`text`). It must end with an assistant reply."""
    rid = row.get("id")
    if not rid:
        raise ValueError("every row to extend needs an 'id' (rows from a run have one)")
    if row.get("messages"):
        messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in row["messages"]]
        sources = [dict(s) for s in row.get("turn_sources") or []]
        if len(sources) != len(messages):
            sources = [_source(m["role"], "source", source_id=rid) for m in messages]
    else:
        user = row.get("instruction") or row.get("prompt")
        if not isinstance(user, str) or not user.strip():
            raise ValueError(f"row {rid} has no user turn: give rows with 'instruction' (or 'prompt') and 'text'")
        if row.get("input"):
            user = f"{user}\n\n{row['input']}"
        answer = row.get("text")
        if not isinstance(answer, str) or not answer.strip():
            raise ValueError(f"row {rid} has no answer in 'text' to continue from (completion rows have one)")
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer.strip()}]
        answered = {key: row.get(key) for key in ("model", "model_sha", "seed", "finish_reason")}
        sources = [  # the user turn is the prompt the parent answered; the answer is the parent row's
            _source("user", "prompt", source_id=row.get("parent_id") or rid),
            _source("assistant", str(row.get("stage") or "source"), source_id=rid, **answered),
        ]
    if messages[-1]["role"] != "assistant":
        raise ValueError(f"row {rid}: the conversation must end with an assistant reply to extend it")
    if system_prompt and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system_prompt})
        sources.insert(0, _source("system", "system_prompt", prompt_hash=content_hash(system_prompt)))
    return Conversation(rid, messages, sources)


def _clean_user(text: str) -> str:
    """The simulator's message without a role label or wrapping quotes it may add."""
    out = text.strip()
    for label in ("User:", "user:", "USER:", "Next message:"):
        if out.startswith(label):
            out = out[len(label) :].strip()
    if len(out) >= 2 and out[0] == out[-1] and out[0] in "\"'":
        out = out[1:-1].strip()
    return out


def _rows_to_extend(rows: pl.DataFrame) -> list[dict[str, Any]]:
    frame = rows
    if "status" in frame.columns:
        frame = frame.filter(pl.col("status").is_null() | (pl.col("status") == "kept"))
    if "id" in frame.columns:  # a row given twice is one conversation, not two with one id
        frame = frame.unique("id", keep="first", maintain_order=True)
    return frame.to_dicts()


def extend_conversations(
    backend: Backend,
    rows: pl.DataFrame,
    config: ConversationConfig | None = None,
    *,
    store: RunStore | None = None,
    user_backend: Backend | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> pl.DataFrame:
    """Extend every kept row of `rows` by `config.turns` turns (user simulator, then `backend` answers).

    `rows`: completion rows (instruction, input, text) or conversation rows (messages). `user_backend`
    plays the user (default: `backend`). With `store`, rows go to the run (ids it has are skipped) and
    the result is every conversation row of these inputs now in the run; without, the new rows."""
    config = config or ConversationConfig()
    require_chat(backend, "answer in a conversation")
    user_model = user_backend or backend
    chat_user = config.user_prompt_style == "chat" or (
        config.user_prompt_style == "auto" and user_model.chat_template is not None
    )
    if chat_user:
        require_chat(user_model, "play the user with user_prompt_style='chat'")
    user_params = config.user_sampling or config.sampling
    identity = {"model": backend.model_id, "user_model": user_model.model_id, "turns": config.turns,
                "sampling": config.sampling.as_record(), "user_sampling": user_params.as_record(),
                "template": config.user_template, "user_style": "chat" if chat_user else "completion",
                "system": config.system_prompt, "drop_truncated": config.drop_truncated}  # fmt: skip
    plans: list[tuple[Conversation, list[dict[str, Any]]]] = []
    for row in _rows_to_extend(rows):
        conv = start_conversation(row, config.system_prompt)
        shown = json.dumps(conv.messages, ensure_ascii=False)
        skeletons = []
        for sample in range(config.final_samples):
            rid = row_id("conversation", conv.key, shown, {**identity, "sample": sample}, config.seed)
            skeleton = {"id": rid, "stage": "conversation", "parent_id": conv.key, "round": row.get("round"),
                        "prompt": config.user_template, "model": backend.name, "model_sha": backend.model_id,
                        "model_id": backend.model_id, "params": config.sampling.as_json(),
                        "run_seed": config.seed, "source": "user_simulator"}  # fmt: skip
            skeletons.append(skeleton)
        plans.append((conv, skeletons))
    have = store.ids("conversation") if store is not None else set()
    todo = [(c, sk) for c, sk in plans if not all(s["id"] in have for s in sk)]
    all_ids = [s["id"] for _, sk in plans for s in sk]
    per_conv = 2 * config.turns + config.final_samples - 1
    tracker = ProgressTracker(len(todo) * per_conv, on_progress)

    def ask_user(conv: Conversation, seed: int) -> tuple[GenerationRequest, str]:
        history = [m for m in conv.messages if m["role"] != "system"]
        text = render_template(
            config.user_template,
            transcript=transcript(history),
            messages=history,
            turn=1 + sum(m["role"] == "user" for m in history),
            first_user=next((m["content"] for m in history if m["role"] == "user"), ""),
        )
        params = user_params.with_seed(seed)
        if chat_user:
            msgs = ({"role": "user", "content": text},)
            return GenerationRequest(messages=msgs, params=params, key=conv.key), content_hash(list(msgs))
        return GenerationRequest(prompt=text, params=params, key=conv.key), content_hash(text)

    def answer(conv: Conversation, seed: int) -> tuple[GenerationRequest, str]:
        msgs = tuple(dict(m) for m in conv.messages)
        req = GenerationRequest(messages=msgs, params=config.sampling.with_seed(seed), key=conv.key)
        return req, content_hash(list(msgs))

    convs = [c for c, _ in todo]
    skeleton_of = {c.key: sk for c, sk in todo}
    for turn in range(config.turns):
        take_turn(user_model, convs, "user", "user_simulator", ask_user,
                  seed_of=lambda c: turn_seed(config.seed, c, "user"), clean=_clean_user,
                  drop_truncated=config.drop_truncated, tracker=tracker, cancel=cancel)  # fmt: skip
        if turn == config.turns - 1 and config.final_samples > 1:
            # every conversation (failed ones too) becomes one per alternative last reply: one row per id
            convs = [c.fork(s) for c in convs for s in range(config.final_samples)]
        take_turn(backend, convs, "assistant", "assistant", answer,
                  seed_of=lambda c: turn_seed(config.seed, c, "assistant"),
                  drop_truncated=config.drop_truncated, tracker=tracker, cancel=cancel)  # fmt: skip
    out = []
    for conv in convs:
        skeleton = skeleton_of[conv.key][conv.sample]
        if conv.cancelled or skeleton["id"] in have:
            continue
        out.append(conversation_row(conv, skeleton))
    if store is None:
        return normalise_rows(out) if out else pl.DataFrame()
    if out:
        with RowWriter(store) as writer:
            for r in out:
                writer.add(r)
    return store.rows_by_id(all_ids)
