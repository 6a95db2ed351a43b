"""Recipe steps that need a chat model: Magpie user turns, and conversations grown from answered rows.

```yaml
model: smollm2                      # both need a chat template (a base model cannot run them)
steps:
  - kind: magpie
    config: {num_prompts: 64, n_turns: 2, seed: 3}
  - kind: completions
    prompts_from: instructions
  - kind: conversation
    rows_from: completions          # the kept answers of this run
    config: {turns: 1, seed: 0}
```

`magpie` calls `generate.magpie.run_magpie` (user turns filtered against the recipe's seed pool, as the
app's Magpie section does; with `n_turns` > 1 each kept turn becomes a conversation row) and
`conversation` calls `generate.conversation.extend_conversations` on the run's kept rows, so a recipe
writes the rows the app's sections write. Both are resumable: a row id the run has is not regenerated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from ..engine import Backend, Progress
from ..generate.conversation import ConversationConfig, extend_conversations
from ..generate.magpie import MagpieConfig, run_magpie
from ..runs import RunStore

__all__ = ["ChatStep", "ConversationStep", "MagpieStep", "chat_plan", "run_chat_step"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MagpieStep(_Strict):
    """Have a chat model write user requests from its template's opening alone (Magpie)."""

    kind: Literal["magpie"] = "magpie"
    """Step type."""
    label: str | None = None
    """A name for this step in progress output and the manifest (default: its kind and position)."""
    use_seeds: bool = True
    """Drop user turns too similar to a task of the recipe's seed pool (what the app's Magpie section
    does); False: compare them with each other only."""
    config: MagpieConfig = Field(default_factory=MagpieConfig)
    """User turns to write, turns per conversation (`n_turns`), sampling, filters, seed (see MagpieConfig)."""


class ConversationStep(_Strict):
    """Extend the run's answered rows into multi-turn conversations (a user simulator, then the model)."""

    kind: Literal["conversation"] = "conversation"
    """Step type."""
    label: str | None = None
    """A name for this step in progress output and the manifest (default: its kind and position)."""
    rows_from: Literal["completions", "conversations"] = "completions"
    """Which kept rows of this run to extend: answers (instruction + text), or conversations (more turns)."""
    limit: int | None = Field(None, ge=1)
    """Extend only the first `limit` rows (None: all)."""
    config: ConversationConfig = Field(default_factory=ConversationConfig)
    """Extra turns, the user-simulator template, sampling, final samples, seed (see ConversationConfig)."""


ChatStep = MagpieStep | ConversationStep


def run_chat_step(
    step: ChatStep,
    backend: Backend,
    store: RunStore,
    inputs: Callable[[], pl.DataFrame],
    on_progress: Callable[[Progress], None],
    cancel: threading.Event,
) -> pl.DataFrame:
    """Run a chat step; `inputs` gives the seed pool (magpie, when `use_seeds`) or the rows to extend."""
    if isinstance(step, MagpieStep):
        seeds = inputs() if step.use_seeds else None
        return run_magpie(backend, store, step.config, seeds=seeds, on_progress=on_progress, cancel=cancel)
    rows = inputs()
    if rows.height == 0:
        return rows
    return extend_conversations(backend, rows, step.config, store=store, on_progress=on_progress, cancel=cancel)


def chat_plan(step: ChatStep, n_in: int | None) -> tuple[int | None, int, int | None, str]:
    """Dry-run figures of a chat step: (rows at most, max tokens per request, requests at most, note)."""
    if isinstance(step, MagpieStep):
        cfg = step.config
        n = cfg.num_prompts
        if cfg.n_turns == 1:
            return n, cfg.sampling.max_tokens, n, "user turns only"
        per = 2 * cfg.n_turns - 1  # answers, and the user turns after the first
        return 2 * n, max(cfg.sampling.max_tokens, cfg.answer_sampling.max_tokens), n * (1 + per), (
            f"{n} user turns, and a conversation of {cfg.n_turns} user turns from each kept one"
        )
    c = step.config
    tokens = max(c.sampling.max_tokens, (c.user_sampling or c.sampling).max_tokens)
    if n_in is None:
        return None, tokens, None, f"{c.turns} more turns per row"
    per = 2 * c.turns + c.final_samples - 1
    return n_in * c.final_samples, tokens, n_in * per, f"{c.turns} more turns per row, {per} requests each"
