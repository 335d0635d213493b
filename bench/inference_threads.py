"""Per-token latency of the built-in engine by CPU thread count, on an idle machine and beside a CPU load
like a training job's (a process multiplying matrices on every core).

    .venv/bin/python bench/inference_threads.py [--model openft-tiny] [--tokens 48] [--threads 1 2]

Each thread count has its own engine (its own scheduler thread) and the counts take turns, so drifting load
from elsewhere hits them alike; the load process starts after the idle measurements and is stopped at the
end. `OMP_WAIT_POLICY` is the engine's (PASSIVE unless set in the environment).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openft.data.render import render_prompt, stop_token_ids
from openft.inference.config import EngineConfig, shared_cpu_threads
from openft.inference.local import LocalEngine
from openft.inference.types import GenerationRequest, ModelRef, SamplingParams
from openft.models.builtin import ensure_builtin_model

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
# What a training job does to the cores: torch with its default threads, multiplying all the time.
LOAD = "import torch\na = torch.randn(384, 384)\nwhile True:\n    a = torch.tanh(a @ a)"


class Timer:
    """One engine (its own scheduler thread) per thread count, so that runs can alternate between them."""

    def __init__(self, base_dir: Path, threads: int, n_tokens: int) -> None:
        self.engine = LocalEngine(EngineConfig(cpu_threads=threads))
        model = ModelRef(base_dir.name, str(base_dir), None, str(base_dir), 2048)
        tokenizer = self.engine.tokenizer(model)
        stops = tuple(stop_token_ids(tokenizer))
        params = SamplingParams(max_tokens=n_tokens, temperature=0.0, logit_bias={s: -100.0 for s in stops})
        prompt = render_prompt(tokenizer, [{"role": "user", "content": PROMPT}])
        self.request = GenerationRequest(model, prompt, params, stops)
        self.n_tokens = n_tokens
        self.seconds_per_token()  # load the model

    def seconds_per_token(self) -> float:
        async def one() -> float:
            started = time.perf_counter()
            async for _ in self.engine.generate(self.request):
                pass
            return (time.perf_counter() - started) / self.n_tokens

        return asyncio.run(one())


def alternating(timers: dict[int, Timer], repeats: int) -> dict[int, float]:
    """Median seconds per token of each, the thread counts taking turns (the machine's load drifts)."""
    runs: dict[int, list[float]] = {threads: [] for threads in timers}
    for _ in range(repeats):
        for threads, timer in timers.items():
            runs[threads].append(timer.seconds_per_token())
    return {threads: statistics.median(values) for threads, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="openft-tiny", choices=["openft-tiny", "openft-small"])
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=5)
    n_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=sorted({shared_cpu_threads(), n_cores}),
        help="thread counts to compare (default: the engine's default and one per core)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    base_dir = ensure_builtin_model(args.model, Path(tempfile.mkdtemp(prefix="openft-bench-threads-")))
    timers = {threads: Timer(base_dir, threads, args.tokens) for threads in args.threads}
    figures: dict[str, dict[int, float]] = {"idle": alternating(timers, args.repeats)}
    load = subprocess.Popen([sys.executable, "-c", LOAD])
    try:
        time.sleep(3)  # torch imported, multiplying
        figures["with_load"] = alternating(timers, args.repeats)
    finally:
        load.kill()
        load.wait()
        for timer in timers.values():
            timer.engine.close()
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{args.model} on {n_cores} cores, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')}")
    for threads in args.threads:
        idle, loaded = figures["idle"][threads], figures["with_load"][threads]
        print(
            f"  {threads} thread(s): {idle * 1000:6.1f} ms/token idle, "
            f"{loaded * 1000:6.1f} ms/token with load"
        )


if __name__ == "__main__":
    main()
