"""Data shipped with the workbench, so notebooks and tests need nothing outside the repository.

Each folder holds its data with its license and a README saying where it comes from:

- `default_seeds.jsonl`: the project's own seed pool (`workbench.generate.seeds.default_seeds`).
- `self_instruct/`: the self-instruct paper's 175 seed tasks, Apache-2.0 (`workbench.generate.seeds.self_instruct_seeds`).
- `self_instruct_answers/`: two models' answers to 38 user-oriented instructions, Apache-2.0
  (`workbench.judge.load_answer_pairs`).
- `hh_rlhf/`: 500 human preference pairs, MIT (`workbench.judge` preference data).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["data_path"]


def data_path(*parts: str) -> Path:
    """The path of a shipped data file, e.g. `data_path("self_instruct", "seed_tasks.jsonl")`; a missing
    file is an error that lists what the folder holds."""
    path = Path(str(resources.files("workbench") / "data")).joinpath(*parts)
    if not path.exists():
        folder = path.parent
        have = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        raise FileNotFoundError(f"no shipped data file {'/'.join(parts)!r} (in {folder}: {have or 'nothing'})")
    return path
