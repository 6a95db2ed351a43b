"""Run directories: append-only storage, resume, provenance — and the row contract every step writes.

```
runs/<run name>/
  manifest.json        what made the run: recipe, model and its identity, versions, rubric texts by version
  rows/part-*.parquet  append-only parts, flushed as rows finish; never rewritten in place
  labels.parquet       human labels, flags and notes keyed by row id (replaced atomically)
```

One run holds every step of a session: self-instruct and Magpie candidates, instances, evolutions,
completions, judgments, IFD scores. `contract.COLUMNS` is the one definition of the columns they write
(name, type, stages, meaning; `contract_markdown()` prints it, and the README's "The run directory"
section is that table). `RunStore.append` casts rows to it and refuses values that do not fit, naming
the column; `RunStore.rows` casts every part to it again, so a column never changes type whatever mix of
stages a run holds. One name means one thing: stage-specific fields have stage-specific names
(`decision_order` for self-instruct decisions, `pair_order` for the pairwise presentation order).
Parts written before a rename are read through `contract.LEGACY_RENAMES`, or refused with a message
that names the column and why. Columns outside the contract are kept, typed by their first write.

Row ids hash what made the row — stage, parent id, prompt, parameters, the model's identity
(`Backend.model_id`: a GGUF's sha256, an endpoint's `model_identity` or served model name, never a
URL) and seed — so a resumed run skips what it has, and another model writes rows of its own.
"""

from .contract import (
    COLUMNS,
    CORE_COLUMNS,
    SCHEMA,
    STAGES,
    Column,
    ContractError,
    contract_markdown,
    stage_columns,
)
from .ids import content_hash, row_id
from .store import RowWriter, RunExistsError, RunStore, normalise_rows

__all__ = [
    "COLUMNS",
    "CORE_COLUMNS",
    "SCHEMA",
    "STAGES",
    "Column",
    "ContractError",
    "RowWriter",
    "RunExistsError",
    "RunStore",
    "content_hash",
    "contract_markdown",
    "normalise_rows",
    "row_id",
    "stage_columns",
]
