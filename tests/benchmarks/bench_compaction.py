"""Stream compaction on vs off (`InProcessLlamaBackend(compact_streams=...)`), one process, interleaved.

Workload (the lead's): the completions of the first 32 shipped self-instruct seeds, one answer each,
64 new tokens at most, with the base-model stop strings (`plan_completions`), on the default model
with 32 sequences. Rows end at different steps and nothing refills their sequences, which is where
compaction matters. Both settings run on the same loaded backend, alternating (off/on, then on/off, ...)
after one warm-up call, so load from other processes hits both alike. Prints each call's tokens/s and
decode-step times, the medians and the on/off ratio of the medians. Texts differ between the two
settings (a moved row is computed in another batch layout, see `workbench.engine.stream_compaction`), so token counts can too:
compare tokens/s. Run: `python tests/benchmarks/bench_compaction.py [--reps 3] [--parallel 32]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from workbench.engine import SamplingParams, default_model_path
from workbench.engine import llama as engine_llama
from workbench.engine.cpu_safety import choose_policy
from workbench.engine.llama import InProcessLlamaBackend
from workbench.generate.completions import CompletionConfig, plan_completions
from workbench.generate.seeds import self_instruct_seeds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=3, help="timed calls per setting (after one warm-up)")
    ap.add_argument("--parallel", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=64)
    args = ap.parse_args()

    verdict = choose_policy(default_model_path())
    backend = InProcessLlamaBackend(default_model_path(), n_parallel=args.parallel, n_threads=args.threads,
                                    buffer_policy=verdict.policy)
    config = CompletionConfig(k=1, params=SamplingParams(temperature=0.7, max_tokens=args.max_tokens))
    requests = [req for _, req in plan_completions(backend, self_instruct_seeds().head(32), config)]
    print(f"model {default_model_path().name}, buffer policy {verdict.policy}, {args.parallel} sequences, "
          f"{args.threads} threads; {len(requests)} requests, max_tokens {args.max_tokens}, "
          f"stop {requests[0].params.stop}")
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")

    decode_s: list[float] = []
    real_decode = engine_llama.lc.llama_decode

    def timed_decode(ctx, batch):  # the engine's own calls, timed one by one
        t = time.perf_counter()
        ret = real_decode(ctx, batch)
        decode_s.append(time.perf_counter() - t)
        return ret

    engine_llama.lc.llama_decode = timed_decode
    tps: dict[bool, list[float]] = {False: [], True: []}
    try:
        backend.generate(requests)  # warm-up: first-call allocations, page cache
        for rep in range(args.reps):
            for on in ((False, True) if rep % 2 == 0 else (True, False)):
                backend.compact_streams = on
                decode_s.clear()
                t0 = time.perf_counter()
                gens = backend.generate(requests)
                dt = time.perf_counter() - t0
                n = sum(g.completion_tokens for g in gens)
                tps[on].append(n / dt)
                print(f"rep {rep} compaction {'on ' if on else 'off'}: {n:5d} tokens in {dt:6.2f} s = "
                      f"{n / dt:6.1f} tok/s; "
                      f"{len(decode_s)} decode steps, median {statistics.median(decode_s) * 1000:5.1f} ms, "
                      f"sum {sum(decode_s):5.2f} s", flush=True)
    finally:
        engine_llama.lc.llama_decode = real_decode
        backend.close()
    off_tps, on_tps = statistics.median(tps[False]), statistics.median(tps[True])
    print(f"median tok/s: off {off_tps:.1f}, on {on_tps:.1f}; ratio on/off {on_tps / off_tps:.2f}x")
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
