"""The CPU self-check: which llama.cpp weight-buffer setting is safe on this CPU (issue: AMX segfaults).

The first tests run for real on the CPU the suite runs on: if the engine would segfault here, they fail
(they do not crash the suite: every decode that could crash runs in a child process)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from workbench.engine import cpu_safety
from workbench.engine.cpu_safety import (
    CPUSafetyWarning,
    PolicyVerdict,
    choose_policy,
    known_crash,
    self_check,
)

AMX_INFO = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | "
    "AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"
)
PLAIN_INFO = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | LLAMAFILE = 1 | REPACK = 1 |"


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("WORKBENCH_BUFFER_POLICY", raising=False)
    cpu_safety._WARNED.clear()
    return tmp_path / "cache"


# -- on the real CPU ---------------------------------------------------------------------------------
@pytest.mark.model
def test_the_chosen_setting_decodes_for_real_on_this_cpu(default_model_path, fresh_cache):
    verdict = choose_policy(default_model_path, use_cache=False)
    assert verdict.checked
    survived, how = self_check(default_model_path, verdict.policy)
    assert survived, f"the engine's buffer setting {verdict.policy!r} crashes this CPU: {how}"


@pytest.mark.model
def test_an_amx_cpu_never_gets_the_default_setting(default_model_path, fresh_cache):
    verdict = choose_policy(default_model_path, use_cache=False)
    if known_crash() is None:
        pytest.skip(f"llama.cpp reports no AMX here ({cpu_safety.system_info()})")
    assert verdict.policy == "no_extra_bufts" and "AMX" in verdict.reason


@pytest.mark.model
def test_where_the_default_crashes_the_engine_does_not_use_it(default_model_path, fresh_cache):
    # On an AMX machine this is the upstream bug itself (llama.cpp#20824): it must not be what the engine loads.
    survived, how = self_check(default_model_path, "default")
    verdict = choose_policy(default_model_path, use_cache=False)
    if not survived:
        assert "SIG" in how or "code" in how
        assert verdict.policy != "default"


@pytest.mark.model
def test_engine_loads_with_the_chosen_setting_and_reports_it(llama_backend, default_model_path):
    assert llama_backend.buffer_policy == choose_policy(default_model_path).policy
    rt = llama_backend.runtime
    assert rt["buffer_policy"] == llama_backend.buffer_policy and "CPU :" in rt["llama_system_info"]
    assert rt["llama_cpp_python"] and isinstance(rt["cpu_flags"], list)


@pytest.mark.model
def test_the_benchmark_baseline_and_server_paths_load_safely(default_model_path):
    # A plain high-level `Llama` completion (the benchmark's baseline loop, and what llama_cpp.server runs),
    # in a child so that a regression fails this test instead of killing the suite.
    code = (
        "from workbench.engine.cpu_safety import safe_llama\n"
        f"llm = safe_llama({str(default_model_path)!r}, n_ctx=256, verbose=False)\n"
        "print(repr(llm.create_completion('The capital of France is', max_tokens=4, temperature=0)['choices'][0]['text']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"plain Llama completion failed ({out.returncode}): {out.stderr[-1500:]}"
    assert out.stdout.strip() not in ("", "''")


# -- the decision logic (no model) -------------------------------------------------------------------
def test_known_crash_reads_llama_cpps_own_report():
    assert "AMX" in (known_crash(AMX_INFO) or "")
    assert known_crash(PLAIN_INFO) is None
    assert known_crash(AMX_INFO.replace("AMX_INT8 = 1", "AMX_INT8 = 0")) is None


def test_amx_is_never_self_checked_with_the_default(fresh_cache, default_model_path, monkeypatch):
    monkeypatch.setattr(cpu_safety, "system_info", lambda: AMX_INFO)
    checked = []
    monkeypatch.setattr(cpu_safety, "self_check", lambda path, policy: (checked.append(policy) or True, "ok"))
    with pytest.warns(CPUSafetyWarning, match="AMX") as caught:
        verdict = choose_policy(default_model_path)
    assert checked == ["no_extra_bufts"] and verdict.policy == "no_extra_bufts"
    msg = str(caught[0].message)
    assert "use_extra_bufts=False" in msg and "cost" in msg  # which feature, which setting, what it costs


def test_a_crashing_self_check_falls_back_and_says_so_once(fresh_cache, default_model_path, monkeypatch):
    monkeypatch.setattr(cpu_safety, "system_info", lambda: PLAIN_INFO)
    results = {"default": (False, "killed by SIGSEGV (Segmentation fault)"), "no_extra_bufts": (True, "ok")}
    monkeypatch.setattr(cpu_safety, "self_check", lambda path, policy: results[policy])
    with pytest.warns(CPUSafetyWarning, match="crashed"):
        verdict = choose_policy(default_model_path)
    assert verdict.policy == "no_extra_bufts" and verdict.failed and "SIGSEGV" in verdict.failed[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CPUSafetyWarning)  # the second load says nothing more
        again = choose_policy(default_model_path)
    assert again.cached and again.policy == "no_extra_bufts"


def test_a_clean_cpu_keeps_the_fast_default_and_caches_it(fresh_cache, default_model_path, monkeypatch):
    monkeypatch.setattr(cpu_safety, "system_info", lambda: PLAIN_INFO)
    calls = []
    monkeypatch.setattr(cpu_safety, "self_check", lambda path, policy: (calls.append(policy) or True, "ok"))
    assert choose_policy(default_model_path).policy == "default"
    assert choose_policy(default_model_path).cached and calls == ["default"]


def test_the_verdict_is_keyed_by_build_and_cpu(fresh_cache, default_model_path, monkeypatch):
    a = cpu_safety.verdict_key(default_model_path)
    monkeypatch.setattr(cpu_safety, "system_info", lambda: PLAIN_INFO + " NEW = 1 |")
    assert cpu_safety.verdict_key(default_model_path) != a


def test_every_setting_crashing_is_a_clear_error(fresh_cache, default_model_path, monkeypatch):
    monkeypatch.setattr(cpu_safety, "system_info", lambda: PLAIN_INFO)
    monkeypatch.setattr(cpu_safety, "self_check", lambda path, policy: (False, "killed by SIGILL (Illegal instruction)"))
    from workbench.engine import EngineError

    with pytest.raises(EngineError) as err:
        choose_policy(default_model_path)
    text = str(err.value)
    assert text.count("SIGILL") == 2 and "Rebuild llama-cpp-python" in text


def test_forcing_a_policy(fresh_cache, default_model_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_BUFFER_POLICY", "no_extra_bufts")
    assert choose_policy(default_model_path) == PolicyVerdict("no_extra_bufts", "forced by WORKBENCH_BUFFER_POLICY", False)
    monkeypatch.setenv("WORKBENCH_BUFFER_POLICY", "fast")
    with pytest.raises(ValueError, match="choose one of default, no_extra_bufts"):
        choose_policy(default_model_path)
