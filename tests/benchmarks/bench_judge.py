"""Judge throughput: 64 answers x an absolute rubric (five described levels), grammar on, at most 48 new
tokens, top-20 logprobs, greedy, on the default model, through three sides in one run:

(a) plain: a loop over `Llama.create_completion` with a `LlamaGrammar` and `logprobs=20`, what a user
    writes (logprobs need `logits_all=True`; llama-cpp-python reuses the longest prefix it still holds);
(b) llama-server (built by build_llama_server.sh, --no-repack) with `cache_prompt`, the same GBNF grammar
    and n_probs=20, all requests at once over its HTTP API;
(c) our engine in-process (the engine process adds nothing measurable, see bench_engine.py): the call,
    then the same call again (its rubric prefix now comes from the prefix cache).

The prompts are `plan_absolute`'s (the default rubric-first template). Each side runs in a fresh process.
Prints judgments/s, prompt tokens computed vs reused, parsed judgments and the ratios. Run:
`python tests/benchmarks/bench_judge.py [--answers 64] [--plain-answers 16] [--slots 32]`. The plain loop
is slow (the logits of every prompt token, 262k vocabulary), so it judges the first `--plain-answers`.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

HERE = Path(__file__).resolve().parent
QUESTIONS = [
    ("Name a primary colour.", ["Blue.", "Green is one.", "Red, yellow and blue are the primary colours.", "Banana."]),
    ("What is 12 times 3?", ["36.", "It is 38.", "12 x 3 = 36, since 3 x 10 = 30 and 3 x 2 = 6.", "A number."]),
    ("Give a synonym for 'happy'.", ["Glad.", "Sad.", "Joyful, as in 'a joyful day'.", "Happy."]),
    ("What is the capital of France?", ["Paris.", "Lyon.", "Paris, on the Seine.", "France has no capital."]),
    ("Why is the sky blue?", ["Rayleigh scattering of sunlight.", "Because of the ocean.",
                              "Air scatters short (blue) wavelengths more than long ones.", "It just is."]),
    ("Translate 'thank you' into Spanish.", ["Gracias.", "Merci.", "'Gracias' (or 'muchas gracias').", "Hola."]),
    ("Write a haiku about autumn.", ["Red leaves drift and fall / cold wind hums through empty trees / the year exhales slow.",
                                     "Autumn is nice.", "Leaves fall.", "Summer sun is hot."]),
    ("How many legs does a spider have?", ["Eight.", "Six.", "Eight legs, unlike insects with six.", "Many."]),
    ("Sort these numbers: 5, 2, 9.", ["2, 5, 9.", "9, 5, 2.", "Ascending: 2, 5, 9.", "5, 2, 9."]),
    ("What does CPU stand for?", ["Central processing unit.", "Computer power unit.",
                                  "Central Processing Unit, the chip that runs instructions.", "A part."]),
    ("Suggest a name for a pet cat.", ["Miso.", "Dog.", "Pepper, short and friendly.", "Cat."]),
    ("What is H2O?", ["Water.", "Salt.", "Water: two hydrogen atoms and one oxygen atom.", "A gas only."]),
    ("Give one tip for better sleep.", ["Keep a fixed bedtime.", "Drink coffee late.",
                                        "Keep the same bedtime and dim screens an hour before.", "Sleep."]),
    ("Who wrote Hamlet?", ["Shakespeare.", "Dickens.", "William Shakespeare, around 1600.", "A king."]),
    ("What is the boiling point of water at sea level in Celsius?", ["100.", "90 degrees.", "100 °C at 1 atm.", "Hot."]),
    ("Name a mammal that can fly.", ["The bat.", "The eagle.", "Bats are the only mammals capable of true flight.", "Fish."]),
]


def rubric_and_requests(n: int) -> tuple[Any, list[Any]]:
    from workbench.judge import JudgeConfig, likert_rubric
    from workbench.judge.absolute import plan_absolute

    rubric = likert_rubric(
        "helpful", "Judge how helpful and correct the response is for the instruction.",
        ["Answers exactly what was asked", "Is factually correct", "Is clear and concise"],
        {1: "Wrong, off topic or empty: no use to the user.",
         2: "Mostly wrong or missing the point, with at most a small correct part.",
         3: "Partly correct or incomplete; the user would need to check elsewhere.",
         4: "Correct and on topic, with minor gaps or extra words.",
         5: "Correct, complete and concise: exactly what the user needed."},
    )
    pairs = [(q, a) for q, answers in QUESTIONS for a in answers]
    pairs = (pairs * (n // len(pairs) + 1))[:n]
    rows = pl.DataFrame({"id": [f"r{i}" for i in range(n)], "instruction": [q for q, _ in pairs],
                         "text": [a for _, a in pairs]})

    class Plan:  # plan_absolute reads only these
        name, model_id, chat_template = "default", "bench", None

    config = JudgeConfig(max_tokens=48, top_logprobs=20, prompt_style="completion")
    tasks = plan_absolute(Plan(), rows, rubric, config)  # type: ignore[arg-type]
    return rubric, [t.request for t in tasks]


def parsed(texts: list[str]) -> int:
    return sum(1 for t in texts if re.search(r"\nScore: [1-5]\s*$", t))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_plain(path: str, reqs: list[Any], threads: int) -> dict[str, float]:
    from llama_cpp import LlamaGrammar

    from workbench.engine.cpu_safety import safe_llama

    llm = safe_llama(path, n_ctx=1024, n_threads=threads, n_threads_batch=threads, logits_all=True, verbose=False,
                     seed=0)
    grammar = LlamaGrammar.from_string(reqs[0].params.grammar, verbose=False)
    texts, computed, reused, prompt = [], 0, 0, 0
    t0 = time.perf_counter()
    for req in reqs:
        toks = llm.tokenize(req.prompt.encode(), add_bos=True, special=False)
        held = llm.longest_token_prefix(llm._input_ids[: llm.n_tokens].tolist(), toks[:-1]) if llm.n_tokens else 0
        out = llm.create_completion(req.prompt, max_tokens=48, temperature=0.0, grammar=grammar, logprobs=20, seed=0)
        texts.append(out["choices"][0]["text"])
        prompt += len(toks)
        reused += held
        computed += len(toks) - held
    dt = time.perf_counter() - t0
    return {"jps": len(reqs) / dt, "n": len(reqs), "seconds": dt, "prompt": prompt, "computed": computed,
            "reused": reused, "parsed": parsed(texts), "rss": rss_mb()}


def run_server(path: str, reqs: list[Any], threads: int, slots: int) -> dict[str, float]:
    from bench_peers import LlamaServer

    server = LlamaServer(path, slots=slots, ctx=1024, threads=threads)
    try:
        bodies = [{"prompt": r.prompt, "n_predict": 48, "temperature": 0.0, "grammar": r.params.grammar,
                   "n_probs": 20, "cache_prompt": True, "seed": 0} for r in reqs]
        outs, dt = server.run_all(bodies)
    finally:
        rss = server.stop()
    computed = sum(o["timings"]["prompt_n"] for o in outs)
    reused = sum(o["timings"].get("cache_n", 0) for o in outs)
    return {"jps": len(reqs) / dt, "n": len(reqs), "seconds": dt, "prompt": computed + reused, "computed": computed,
            "reused": reused, "parsed": parsed([o["content"] for o in outs]), "rss": rss}


def run_engine(path: str, reqs: list[Any], threads: int, parallel: int) -> dict[str, float]:
    from workbench.engine.llama import InProcessLlamaBackend

    backend = InProcessLlamaBackend(path, n_parallel=parallel, n_ctx_per_seq=1024, n_threads=threads)
    out: dict[str, float] = {}
    for tag in ("", "2"):  # the call, then the same call with the rubric prefix cached
        t0 = time.perf_counter()
        gens = backend.generate(reqs)
        dt = time.perf_counter() - t0
        st = backend.last_prefix_stats
        out |= {f"jps{tag}": len(reqs) / dt, f"seconds{tag}": dt, f"prompt{tag}": st.prompt_tokens,
                f"computed{tag}": st.prefill_tokens, f"reused{tag}": st.reused_tokens,
                f"parsed{tag}": parsed([g.text for g in gens])}
    backend.close()
    return {**out, "n": len(reqs), "rss": rss_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--answers", type=int, default=64)
    ap.add_argument("--plain-answers", type=int, default=8)
    ap.add_argument("--slots", type=int, default=32, help="llama-server slots and our engine's sequences")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-plain", action="store_true")
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--only", choices=["plain", "server", "engine"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from workbench.engine import default_model_path

    path = str(default_model_path())
    if args.only:
        _, reqs = rubric_and_requests(args.answers)
        fn = {"plain": lambda: run_plain(path, reqs[: args.plain_answers], args.threads),
              "server": lambda: run_server(path, reqs, args.threads, args.slots),
              "engine": lambda: run_engine(path, reqs, args.threads, args.slots)}[args.only]
        print(json.dumps(fn()))
        return
    rubric, reqs = rubric_and_requests(args.answers)
    print(f"judge workload: {args.answers} answers x rubric {rubric.name!r} (5 levels, version {rubric.version}), "
          f"grammar on, <= 48 new tokens, top-20 logprobs, greedy, {args.threads} threads; "
          f"~{len(reqs[0].prompt)} prompt characters each")

    def side(name: str) -> dict[str, float]:
        cmd = [sys.executable, __file__, "--only", name, "--answers", str(args.answers), "--plain-answers",
               str(args.plain_answers), "--slots", str(args.slots), "--threads", str(args.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    def show(label: str, r: dict[str, float], tag: str = "") -> None:
        print(f"{label:<44} {r['jps' + tag]:6.2f} judgments/s  prompt tokens computed {r['computed' + tag]:.0f} / "
              f"reused {r['reused' + tag]:.0f}  parsed {r['parsed' + tag]:.0f}/{r['n']:.0f}  peak RSS {r['rss']:.0f} MB")

    eng = side("engine")
    show(f"(c) engine, {args.slots} sequences", eng)
    show("(c) engine, same call again (prefix cached)", eng, "2")
    if not args.skip_server:
        srv = side("server")
        show(f"(b) llama-server, {args.slots} slots, cache_prompt", srv)
        print(f"ratio engine / llama-server: {eng['jps'] / srv['jps']:.2f}x (target > 1)")
    if not args.skip_plain:
        plain = side("plain")
        show(f"(a) plain create_completion loop ({plain['n']:.0f} answers)", plain)
        print(f"ratio engine / plain loop: {eng['jps'] / plain['jps']:.2f}x (target >= 5x)")


if __name__ == "__main__":
    main()
