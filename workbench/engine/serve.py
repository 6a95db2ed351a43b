"""`python -m workbench.engine.serve ARGS`: llama-cpp-python's OpenAI-compatible server, CPU-safe.

Takes exactly `python -m llama_cpp.server`'s arguments. Before the server loads the model, the buffer
policy that is safe on this CPU is chosen (`cpu_safety.choose_policy`, self-checked once and cached), so
the server does not die on its first request on a CPU whose llama.cpp build crashes (Intel AMX).
"""

from __future__ import annotations

import sys
import warnings


def _model_arg(argv: list[str]) -> str | None:
    for i, a in enumerate(argv):
        if a in ("--model", "-m") and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--model="):
            return a.split("=", 1)[1]
    return None


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    from .cpu_safety import CPUSafetyWarning, choose_policy, patch_llama_cpp_defaults

    model = _model_arg(argv)
    if model is not None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CPUSafetyWarning)
            verdict = choose_policy(model)
        for w in caught:
            print(f"workbench: {w.message}", file=sys.stderr)
        patch_llama_cpp_defaults(verdict.policy)
    else:  # a config file names the models: nothing to self-check against, take the safe setting
        patch_llama_cpp_defaults("no_extra_bufts")
    from llama_cpp.server.__main__ import main as server_main

    sys.argv = ["llama_cpp.server", *argv]
    server_main()


if __name__ == "__main__":
    main()
