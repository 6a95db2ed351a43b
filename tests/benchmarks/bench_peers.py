"""Our engine vs llama.cpp's own `llama-server` on the engine workload of bench_engine.py, one run.

llama-server is built once (`build_llama_server.sh`) from the llama.cpp sources that the pinned
llama-cpp-python vendors, so both sides run the same llama.cpp; it loads weights with `--no-repack` (no
extra buffer types: the engine's CPU-safe setting on this AMX CPU) and serves on 127.0.0.1. The workload
(64 prompts x 128 new tokens, T=0.9, top-p 0.95, top-k 40, min-p 0.05, seed per row, 2 threads) goes to
the server as concurrent /completion requests, at 32 and at 64 slots; our engine runs it in its engine
process (bench_engine.py's engine side, a fresh process). Prints tokens/s, the ratio to the server's best
slot count, and peak memory (RSS high-water mark) of each. Run: `make bench-peers`, or
`python tests/benchmarks/bench_peers.py [--slots 32 64] [--prompts 64] [--tokens 128]`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def server_binary() -> str:
    """The cached llama-server of the pinned llama-cpp-python (built on first use)."""
    out = subprocess.run(["bash", str(HERE / "build_llama_server.sh")], check=True, capture_output=True, text=True,
                         env={**os.environ, "PY": sys.executable})
    return out.stdout.strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    """A live process's RSS high-water mark (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class LlamaServer:
    """llama-server on 127.0.0.1 with `slots` parallel slots of `ctx` tokens each, CPU-safe buffers."""

    def __init__(self, model: str, *, slots: int, ctx: int = 512, threads: int = 2, batch: int = 512) -> None:
        self.port = _free_port()
        cmd = [server_binary(), "-m", model, "--host", "127.0.0.1", "--port", str(self.port),
               "-np", str(slots), "-c", str(slots * ctx), "-t", str(threads), "-tb", str(threads),
               "-b", str(batch), "-ub", str(batch), "--no-repack", "--no-webui", "-ngl", "0"]
        self.log = open(f"/tmp/llama-server-{self.port}.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"llama-server exited ({self.proc.returncode}); see {self.log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise SystemExit("llama-server did not become healthy in 300 s")

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=3600) as r:
            return json.loads(r.read())

    def run_all(self, bodies: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
        """Every body at once (the server queues what its slots cannot take); the wall time."""
        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(bodies)) as pool:
            outs = list(pool.map(lambda b: self.post("/completion", b), bodies))
        return outs, time.perf_counter() - t0

    def stop(self) -> float:
        """End the server; returns its peak RSS in MB."""
        rss = peak_rss_mb(self.proc.pid) if self.proc.poll() is None else float("nan")
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        return rss


def server_side(model: str, slots: int, texts: list[str], tokens: int, threads: int) -> dict[str, float]:
    server = LlamaServer(model, slots=slots, threads=threads)
    try:
        bodies = [{"prompt": p, "n_predict": tokens, "temperature": 0.9, "top_p": 0.95, "top_k": 40, "min_p": 0.05,
                   "repeat_penalty": 1.0, "seed": i, "cache_prompt": True} for i, p in enumerate(texts)]
        outs, dt = server.run_all(bodies)
    finally:
        rss = server.stop()
    n = sum(o["tokens_predicted"] for o in outs)
    prompt_ms = sum(o["timings"]["prompt_ms"] for o in outs)
    return {"tps": n / dt, "tokens": n, "rss": rss, "seconds": dt, "prompt_ms": prompt_ms}


def engine_side(args: argparse.Namespace, parallel: int) -> dict[str, float]:
    cmd = [sys.executable, str(HERE / "bench_engine.py"), "--only", "engine", "--prompts", str(args.prompts),
           "--tokens", str(args.tokens), "--parallel", str(parallel), "--threads", str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    sys.path.insert(0, str(HERE))
    from bench_engine import prompts

    from workbench.engine import default_model_path

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--slots", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--parallel", type=int, default=64, help="our engine's sequences (bench_engine's default)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    model = str(default_model_path())
    texts = prompts(args.prompts)
    print(f"llama-server {server_binary()} (GGML_NATIVE=ON, --no-repack)\nworkload: {args.prompts} prompts x "
          f"{args.tokens} new tokens, T=0.9 top-p=0.95 top-k=40 min-p=0.05, {args.threads} threads, one side at a time")
    eng = engine_side(args, args.parallel)
    print(f"engine       {args.parallel} sequences: {eng['tps']:7.1f} tok/s ({eng['tokens']:.0f} tokens)  "
          f"peak RSS {eng['rss']:.0f} MB")
    best = None
    for slots in args.slots:
        srv = server_side(model, slots, texts, args.tokens, args.threads)
        print(f"llama-server {slots} slots:     {srv['tps']:7.1f} tok/s ({srv['tokens']:.0f} tokens)  "
              f"peak RSS {srv['rss']:.0f} MB")
        if best is None or srv["tps"] > best[1]["tps"]:
            best = (slots, srv)
    assert best is not None
    ratio = eng["tps"] / best[1]["tps"]
    print(f"ratio engine / llama-server at its best ({best[0]} slots): {ratio:.2f}x (target >= 1.2x: "
          f"{'met' if ratio >= 1.2 else 'not met'})")


if __name__ == "__main__":
    main()
