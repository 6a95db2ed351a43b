"""Seeds from Hugging Face datasets: a folder saved with `save_to_disk`, and `hf://` names fetched by
`datasets.load_dataset` from a Hub stand-in on 127.0.0.1 (`tests/hub_server.py`), then loaded offline.

The `hf://` cases run in a child process, because `datasets` and `huggingface_hub` read HF_ENDPOINT,
HF_HOME and HF_HUB_OFFLINE when they are imported, as they would in a user's fresh kernel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import polars as pl
import pytest

from tests.hub_server import FakeRepo, fake_hub
from workbench.generate import SeedFormatError, load_seeds
from workbench.generate.hub_seeds import HubDataset, SeedSourceError, parse_dataset_spec

ROOT = Path(__file__).resolve().parents[2]
ROWS = {
    "prompt": ["Write a haiku about rain.", "Name three prime numbers.", "Translate 'cat' to French."],
    "completion": ["Grey drops on the roof", "2, 3 and 5", "chat"],
    "topic": ["poetry", "maths", "language"],
}


def test_a_saved_dataset_loads_with_its_columns_mapped(tmp_path: Path) -> None:
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "ds"))
    seeds = load_seeds(tmp_path / "ds", instruction="prompt", output="completion", category="topic")
    assert seeds["instruction"].to_list() == ROWS["prompt"]
    assert seeds["instances"].to_list()[1] == [{"input": "", "output": "2, 3 and 5"}]
    assert seeds["category"].to_list() == ROWS["topic"]
    assert load_seeds(str(tmp_path / "ds"), instruction="prompt", limit=2).height == 2


def test_a_saved_dataset_dict_takes_the_named_split_or_train(tmp_path: Path) -> None:
    train = datasets.Dataset.from_dict(ROWS)
    test = datasets.Dataset.from_dict({k: v[:1] for k, v in ROWS.items()})
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "dd"))
    assert load_seeds(tmp_path / "dd", instruction="prompt").height == 3
    assert load_seeds(tmp_path / "dd", instruction="prompt", split="test").height == 1
    with pytest.raises(SeedSourceError, match=r"pick a split .*it has train, test"):
        load_seeds(tmp_path / "dd", instruction="prompt", split="validation")


def test_a_wrong_column_lists_the_columns_there_are(tmp_path: Path) -> None:
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(
        SeedFormatError, match=r"no column 'question' \(given as instruction=\); it has: prompt"
    ):
        load_seeds(tmp_path / "ds", instruction="question")
    with pytest.raises(
        SeedFormatError, match=r"needs an 'instruction' column, or name .*columns: prompt, completion"
    ):
        load_seeds(tmp_path / "ds")


def test_the_mapping_works_for_files_and_frames_too(tmp_path: Path) -> None:
    frame = pl.DataFrame(ROWS)
    assert (
        load_seeds(frame, instruction="prompt", output="completion")["instruction"].to_list()
        == ROWS["prompt"]
    )
    frame.write_parquet(tmp_path / "s.parquet")
    csv = tmp_path / "s.csv"
    frame.write_csv(csv)
    for path in (tmp_path / "s.parquet", csv):
        seeds = load_seeds(path, instruction="prompt", output="completion")
        assert seeds["instances"].to_list()[2] == [{"input": "", "output": "chat"}]


def test_dataset_names_parse_and_bad_ones_say_the_form() -> None:
    assert parse_dataset_spec("hf://tatsu-lab/alpaca") == HubDataset("tatsu-lab/alpaca")
    assert parse_dataset_spec("hf://o/n@v2:train[:100]") == HubDataset("o/n", "train[:100]", "v2")
    assert parse_dataset_spec("hf://squad:validation") == HubDataset("squad", "validation")
    for bad in ("hf://", "hf://o/n/extra/x", "hf://o/n:tr ain", "hf://o/n@:train"):
        with pytest.raises(SeedSourceError, match=r"hf://owner/name\[@revision\]\[:split\]|split name"):
            parse_dataset_spec(bad)


_CHILD = """
import json, sys
from workbench.generate import load_seeds
try:
    seeds = load_seeds(sys.argv[1], instruction="prompt", output="completion", limit=int(sys.argv[2]) or None)
    print(json.dumps({"ok": seeds["instruction"].to_list()}))
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
"""


def _child(spec: str, env: dict[str, str], limit: int = 0) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, spec, str(limit)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.fixture
def child_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    env.update(HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(ROOT), HF_HUB_DISABLE_TELEMETRY="1")
    return env


def test_a_hub_dataset_downloads_once_then_loads_offline(tmp_path: Path, child_env: dict[str, str]) -> None:
    parquet = tmp_path / "train.parquet"
    pl.DataFrame(ROWS).write_parquet(parquet)
    repos = {"datasets/org/tiny-seeds": FakeRepo({"data/train-00000-of-00001.parquet": parquet})}
    with fake_hub(repos) as hub:
        online = {**child_env, "HF_ENDPOINT": hub.url}
        assert _child("hf://org/tiny-seeds:train", online) == {"ok": ROWS["prompt"]}
        assert hub.gets_of("train-00000-of-00001.parquet") == 1
        assert _child("hf://org/tiny-seeds", online, limit=2) == {"ok": ROWS["prompt"][:2]}
        bad = _child("hf://org/tiny-seeds:validation", online)
        assert bad["error"] == "SeedSourceError" and "validation" in str(bad["message"])
        missing = _child("hf://org/no-such-set", online)
        assert missing["error"] == "SeedSourceError" and "no dataset org/no-such-set" in str(
            missing["message"]
        )
    # the server is gone: offline, the cached copy loads
    offline = {**child_env, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "1"}
    assert _child("hf://org/tiny-seeds:train", offline) == {"ok": ROWS["prompt"]}


def test_offline_and_not_cached_is_a_clear_error(tmp_path: Path, child_env: dict[str, str]) -> None:
    result = _child("hf://org/never-loaded:train", {**child_env, "HF_HUB_OFFLINE": "1"})
    assert result["error"] == "SeedSourceError"
    message = str(result["message"])
    assert "hf://org/never-loaded:train" in message and "not in the datasets cache" in message
    assert "save_to_disk" in message
