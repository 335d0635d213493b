"""Does a long generation delay short requests? p50 latency of short requests alone, and while one long
request (4,096 tokens, or what the context allows) generates on the same engine.

Short requests for the same weights join the long request's running batch between two decoding steps
(continuous batching), so each waits at most one step to start and then decodes alongside it. End tokens
are forbidden, so every request generates exactly the tokens it asks for.

    .venv/bin/python bench/inference_fairness.py [--model openft-tiny] [--short-tokens 16] [--n-short 12]

openft-tiny's context (2,048 tokens) cuts the long request short; a model with a longer context, such as
the packaged smollm2-135m-instruct (8,192), generates the whole 4,096 tokens:

    .venv/bin/python bench/inference_fairness.py --model smollm2-135m-instruct --models-dir ~/.openft/models
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from openft.data.render import render_prompt, stop_token_ids
from openft.inference.config import EngineConfig
from openft.inference.local import LocalEngine
from openft.inference.types import GenerationRequest, ModelRef, SamplingParams
from openft.train.spec import find_base_model

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


class Fairness:
    def __init__(self, engine: LocalEngine, base_dir: Path, context_length: int) -> None:
        self.engine = engine
        self.model = ModelRef(base_dir.name, str(base_dir), None, str(base_dir), context_length)
        tokenizer = engine.tokenizer(self.model)
        self.prompt = render_prompt(tokenizer, [{"role": "user", "content": PROMPT}])
        self.stops = tuple(stop_token_ids(tokenizer))

    def request(self, n_tokens: int) -> GenerationRequest:
        params = SamplingParams(
            max_tokens=n_tokens, temperature=0.0, logit_bias={s: -100.0 for s in self.stops}
        )
        return GenerationRequest(self.model, self.prompt, params, self.stops)

    async def latency_s(self, n_tokens: int) -> float:
        started = time.perf_counter()
        async for _ in self.engine.generate(self.request(n_tokens)):
            pass
        return time.perf_counter() - started

    async def short_latencies(self, n_short: int, n_tokens: int) -> list[float]:
        return [await self.latency_s(n_tokens) for _ in range(n_short)]

    async def with_long_request(self, n_short: int, n_tokens: int, n_long: int) -> dict[str, Any]:
        progress = {"n_tokens": 0}
        first_token = asyncio.Event()

        async def long() -> None:
            async for delta in self.engine.generate(self.request(n_long)):
                progress["n_tokens"] = delta.n_tokens
                first_token.set()

        task = asyncio.create_task(long())
        await first_token.wait()
        before = progress["n_tokens"]
        latencies = await self.short_latencies(n_short, n_tokens)
        during = progress["n_tokens"] - before
        still_running = not task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return {"latencies": latencies, "long_tokens_meanwhile": during, "long_still_running": still_running}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="openft-tiny", help="any base model of the catalog")
    parser.add_argument(
        "--models-dir", type=Path, default=None, help="the catalog's models dir (default: a fresh one)"
    )
    parser.add_argument("--short-tokens", type=int, default=16)
    parser.add_argument("--long-tokens", type=int, default=4096, help="capped by the model's context")
    parser.add_argument("--n-short", type=int, default=12)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: the engine's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="openft-bench-fairness-"))
    base_dir = find_base_model(args.models_dir or work / "models", args.model).path()
    context_length = json.loads((base_dir / "config.json").read_text())["max_position_embeddings"]
    engine = LocalEngine(EngineConfig(device=args.device, cpu_threads=args.threads))
    bench = Fairness(engine, base_dir, context_length)
    n_long = min(args.long_tokens, context_length - len(bench.prompt))
    try:
        asyncio.run(bench.short_latencies(2, args.short_tokens))  # load the model, warm up
        alone = asyncio.run(bench.short_latencies(args.n_short, args.short_tokens))
        during = asyncio.run(bench.with_long_request(args.n_short, args.short_tokens, n_long))
    finally:
        engine.close()
    figures = {
        "model": args.model,
        "short_tokens": args.short_tokens,
        "long_tokens": n_long,
        "p50_alone_s": statistics.median(alone),
        "p50_with_long_s": statistics.median(during["latencies"]),
        "long_tokens_meanwhile": during["long_tokens_meanwhile"],
        "long_still_running": during["long_still_running"],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{args.model}: {args.n_short} requests of {args.short_tokens} tokens, one after another")
    print(f"  p50 latency alone:                       {figures['p50_alone_s'] * 1000:7.1f} ms")
    print(f"  p50 latency while a {n_long}-token request runs: {figures['p50_with_long_s'] * 1000:7.1f} ms")
    print(
        f"  the long request generated {during['long_tokens_meanwhile']} tokens meanwhile "
        f"({'still running' if during['long_still_running'] else 'finished'})"
    )


if __name__ == "__main__":
    main()
