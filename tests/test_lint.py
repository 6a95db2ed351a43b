"""ruff and mypy, configured in pyproject.toml, stay clean (the suite fails otherwise)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean():
    res = _run("ruff", "check", "workbench", "widgets", "tests")
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_is_clean():
    res = _run("mypy", "workbench", "widgets")
    assert res.returncode == 0, res.stdout + res.stderr
