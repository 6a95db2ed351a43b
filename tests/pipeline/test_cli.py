"""The headless CLI: runs, refuses to clobber, resumes after Ctrl-C, plans a dry run, runs the real model."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from workbench.export import load_export
from workbench.pipeline.cli import main
from workbench.runs import RunStore

REPO = Path(__file__).resolve().parents[2]

FAKE = """\
name: fake-run
model: {{source: fake, options: {{delay_s: {delay}}}}}
seeds: {{limit: {seeds}}}
steps:
  - kind: completions
    config: {{k: 2, params: {{max_tokens: 16}}}}
  - kind: evolve
    limit: 2
    config: {{operators: [deepen]}}
exports:
  - {{format: sft, path: {out}/sft}}
  - {{format: prompt_completion, kind: jsonl, path: {out}/pc}}
"""


def recipe_file(tmp_path: Path, *, delay: float = 0.0, seeds: int = 4) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(FAKE.format(delay=delay, seeds=seeds, out=tmp_path / "exports"))
    return path


def test_run_writes_run_and_exports(tmp_path, capsys):
    recipe = recipe_file(tmp_path)
    assert main(["run", str(recipe), "--runs-root", str(tmp_path / "runs")]) == 0
    store = RunStore.open(tmp_path / "runs" / "fake-run")
    rows = store.rows()
    assert rows.filter(pl.col("stage") == "completion").height == 8
    assert rows.filter(pl.col("stage") == "evolution").height == 2
    manifest = store.manifest
    assert manifest["recipe"]["name"] == "fake-run" and manifest["steps_done"] == ["1:completions", "2:evolve"]
    sft = load_export(tmp_path / "exports" / "sft")
    assert len(sft) == rows.filter((pl.col("stage") == "completion") & (pl.col("status") == "kept")).height
    err = capsys.readouterr().err
    assert "[1/2] 1:completions |" in err and "8/8 rows" in err and "done:" in err


def test_existing_run_needs_resume_and_resume_adds_nothing(tmp_path, capsys):
    recipe = recipe_file(tmp_path)
    root = str(tmp_path / "runs")
    assert main(["run", str(recipe), "--runs-root", root, "--no-export"]) == 0
    before = RunStore.open(tmp_path / "runs" / "fake-run").rows()
    assert main(["run", str(recipe), "--runs-root", root, "--no-export"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["run", str(recipe), "--runs-root", root, "--no-export", "--resume"]) == 0
    after = RunStore.open(tmp_path / "runs" / "fake-run").rows()
    assert after.height == before.height
    assert "(0 new)" in capsys.readouterr().err


def test_resume_with_a_different_recipe_is_refused(tmp_path, capsys):
    recipe = recipe_file(tmp_path)
    root = str(tmp_path / "runs")
    assert main(["run", str(recipe), "--runs-root", root, "--no-export"]) == 0
    recipe.write_text(recipe.read_text().replace("k: 2", "k: 3"))
    assert main(["run", str(recipe), "--runs-root", root, "--no-export", "--resume"]) == 1
    assert "different recipe" in capsys.readouterr().err


def test_bad_recipe_exits_2_with_line(tmp_path, capsys):
    recipe = recipe_file(tmp_path)
    recipe.write_text(recipe.read_text().replace("k: 2", "k: 0"))
    assert main(["run", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "line 6" in err and "config.k" in err


def test_dry_run_plans_and_writes_nothing(tmp_path, capsys):
    recipe = recipe_file(tmp_path, seeds=5)
    assert main(["run", str(recipe), "--dry-run", "--runs-root", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "1:completions" in out and "2:evolve" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("1:", "2:"))}
    assert lines["1:completions"][1:5] == ["5", "10", "16", "160"]  # inputs, rows, max tokens, token budget
    assert lines["2:evolve"][1:3] == ["2", "2"]
    assert "total rows (upper bound): 12" in out
    # each step previewed on --sample-rows rows and priced sub-step by sub-step, then the total
    assert "estimate, each step previewed on 4 rows:" in out and "tok/s" in out
    assert re.search(r"^  1:completions: ≈ \S+ \(preview: 8 rows in", out, re.M)  # 4 prompts × k=2
    assert re.search(r"^    completion: 10 requests × \d+ prompt \+ \d+ answer tokens", out, re.M)
    assert re.search(r"^    evolution: 2 requests", out, re.M)
    assert re.search(r"^estimated time: ≈ \S+ in total$", out, re.M)
    assert not (tmp_path / "runs").exists()


def test_validate_prints_normalised_recipe(tmp_path, capsys):
    assert main(["validate", str(recipe_file(tmp_path))]) == 0
    assert "kind: completions" in capsys.readouterr().out


def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path):
    recipe = recipe_file(tmp_path, delay=0.15, seeds=20)  # 40 completions at ~0.15 s each
    root = tmp_path / "runs"
    cmd = [sys.executable, "-m", "workbench", "run", str(recipe), "--runs-root", str(root), "--no-export"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    parts = root / "fake-run" / "rows"
    deadline = time.monotonic() + 60
    while not (parts.exists() and any(parts.glob("part-*.parquet"))):
        assert proc.poll() is None and time.monotonic() < deadline, "the run never wrote a row"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err
    partial = RunStore.open(root / "fake-run").rows()
    assert 0 < partial.height < 40
    kept_first = dict(zip(partial["id"], partial["created_at"], strict=True))

    done = subprocess.run([*cmd, "--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = RunStore.open(root / "fake-run").rows()
    completions = rows.filter(pl.col("stage") == "completion")
    assert completions.height == 40 and completions["id"].n_unique() == 40
    # rows written before the interrupt are the same rows (not regenerated)
    again = dict(zip(rows["id"], rows["created_at"], strict=True))
    assert all(again[i] == t for i, t in kept_first.items())


@pytest.mark.model
def test_real_model_headless_run_matches_the_library(tmp_path, llama_backend):
    """`python -m workbench run` on the default model writes the rows `run_completions` plans in-process."""
    from workbench.generate.completions import CompletionConfig, plan_completions
    from workbench.pipeline.recipe import load_recipe
    from workbench.pipeline.runner import step_inputs

    recipe = tmp_path / "real.yaml"
    recipe.write_text(
        "name: real\nmodel: default\nseeds: {limit: 3}\n"
        "steps:\n  - kind: completions\n    config: {k: 1, seed: 5, params: {max_tokens: 12, temperature: 0.7}}\n"
    )
    cmd = [sys.executable, "-m", "workbench", "run", str(recipe), "--runs-root", str(tmp_path / "runs")]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = RunStore.open(tmp_path / "runs" / "real").rows().sort("id")
    assert rows.height == 3 and set(rows["status"]) <= {"kept", "dropped"}
    loaded = load_recipe(recipe)
    step = loaded.steps[0]
    plan = plan_completions(llama_backend, step_inputs(step, loaded, None), CompletionConfig(**step.config.model_dump()))
    expected = sorted((s["id"], s["prompt"], s["params"]) for s, _ in plan)
    assert list(zip(rows["id"], rows["prompt"], rows["params"], strict=True)) == expected
    assert all(json.loads(p)["max_tokens"] == 12 for p in rows["params"])


def test_steps_chain_through_the_run(tmp_path, capsys):
    """self-instruct → completions of its kept instructions → a judge of those completions."""
    recipe = tmp_path / "chain.yaml"
    recipe.write_text(
        "name: chain\nmodel: fake\nseeds: {limit: 10}\nsteps:\n"
        "  - kind: self_instruct\n    config: {num_instructions: 4, rounds: 2, prompts_per_round: 4, generate_instances: false}\n"
        "  - kind: completions\n    prompts_from: instructions\n    config: {k: 1}\n"
        "  - kind: judge\n    rubric: {name: h, levels: {1: bad, 2: ok, 3: good}}\n    config: {max_tokens: 48}\n"
    )
    root = str(tmp_path / "runs")
    assert main(["run", str(recipe), "--runs-root", root, "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "1:self_instruct" in plan and "at most 8 generations" in plan
    assert main(["run", str(recipe), "--runs-root", root]) == 0
    rows = RunStore.open(tmp_path / "runs" / "chain").rows()
    kept = rows.filter((pl.col("stage") == "instruction") & (pl.col("status") == "kept"))
    completions = rows.filter(pl.col("stage") == "completion")
    judgments = rows.filter(pl.col("stage") == "judgment")
    assert kept.height > 0 and completions.height == kept.height
    assert set(completions["parent_id"]) == set(kept["id"])
    assert set(completions["instruction"]) == set(kept["text"])
    assert set(judgments["parent_id"]) == set(completions.filter(pl.col("status") == "kept")["id"])
    assert judgments["rubric"].unique().to_list() == ["h"]


def test_ifd_step_and_export_by_rubric_version(tmp_path, capsys):
    """completions → a judge → an edited rubric judging again → IFD; exports pick a rubric version."""
    recipe = tmp_path / "ifd.yaml"
    recipe.write_text(
        "name: ifd\nmodel: fake\nseeds: {limit: 3}\nsteps:\n"
        "  - kind: completions\n    config: {k: 2}\n"
        "  - kind: judge\n    rubric: {name: h, levels: {1: bad, 2: ok, 3: good}}\n"
        "  - kind: judge\n    rubric: {name: h, task_description: stricter, levels: {1: bad, 2: ok, 3: good}}\n"
        "  - kind: ifd\n    rows_from: completions\n"
    )
    from workbench.engine import FakeBackend
    from workbench.engine.fake import fake_text
    from workbench.pipeline.recipe import load_recipe
    from workbench.pipeline.runner import run_recipe

    def scripted(req):  # a judge that parses (scores by answer length), answers from the fake model
        text = req.prompt or req.messages[-1]["content"]
        if "Response to grade:" in text:
            return f" Fine.\nScore: {1 + len(text) % 3}"
        return " " + fake_text(text, req.params.seed or 0, 8)

    root = str(tmp_path / "runs")
    run_recipe(load_recipe(recipe), backend=FakeBackend(responder=scripted), runs_root=root)
    store = RunStore.open(tmp_path / "runs" / "ifd")
    rows = store.rows()
    completions = rows.filter((pl.col("stage") == "completion") & (pl.col("status") == "kept"))
    ifd = rows.filter(pl.col("stage") == "ifd")
    assert set(ifd["parent_id"]) == set(completions["id"]) and ifd["ifd"].null_count() < ifd.height
    versions = rows.filter(pl.col("stage") == "judgment")["rubric_version"].unique(maintain_order=True).to_list()
    assert len(versions) == 2
    again = FakeBackend(responder=scripted)
    run_recipe(load_recipe(recipe), backend=again, runs_root=root, resume=True)
    assert RunStore.open(store.path).rows().height == rows.height and again.calls == []  # nothing redone
    capsys.readouterr()
    out = str(tmp_path / "sft-old")
    assert main(["export", str(store.path), "--format", "sft", "--out", out, "--rubric-version", versions[0][:6],
                 "--min-score", "1"]) == 0  # fmt: skip
    assert set(load_export(out)["rubric_version"]) == {versions[0]}
    card = (Path(out) / "README.md").read_text()
    assert f"rubric `h` version `{versions[0]}` (not the latest), as asked" in card
    assert main(["export", str(store.path), "--format", "sft", "--out", str(tmp_path / "x"), "--rubric-version",
                 "ffff"]) == 1  # fmt: skip
    assert "matches no judged version" in capsys.readouterr().err
