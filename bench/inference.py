"""Inference engine figures: speed with and without a LoRA adapter, memory per adapter, batching gain.

Runs the built-in engine (openft.inference.LocalEngine) in this process on a built-in model or on the
pretrained `smollm2-135m-instruct` (converted once into --models-dir):
  1. one request at a time: time to first token and decode tokens/s, base model vs the same model with a
     LoRA adapter (goal: adapter overhead <= 15 %),
  2. resident memory (RSS) with 1 adapter loaded vs 10,
  3. 8 requests at once vs the same 8 one after another (aggregate tokens/s), for the base model and
     for 8 requests spread over 4 adapters of it (one mixed batch).
With --generate: the engine's single stream against plain transformers `generate` on the same weights,
precision, prompt and thread count (greedy, end tokens suppressed on both, runs taken in turn; goal:
decode tokens/s >= 1.0x `generate`). With --grid: aggregate tokens/s of 1/4/8/16 concurrent requests
over 0 (the base), 1 and 4 adapters, and each one's gain over one request at a time (goal: 8 at once
>= 4x). Adapters are random (rank 16, every linear layer), so the numbers do not depend on training;
every request generates exactly --tokens tokens.

    .venv/bin/python bench/inference.py [--model openft-small] [--tokens 128] [--threads N] [--json]
    .venv/bin/python bench/inference.py --model smollm2-135m-instruct --generate --grid --tokens 64 \
        --threads 1 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import psutil

from openft.data.render import render_prompt, stop_token_ids
from openft.inference.bf16_products import use_bf16_products
from openft.inference.config import EngineConfig, shared_cpu_threads
from openft.inference.local import LocalEngine
from openft.inference.types import GenerationRequest, ModelRef, SamplingParams
from openft.models.catalog import Catalog

MB = 1024 * 1024
PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


GRID_CONCURRENCY = (1, 4, 8, 16)
GRID_ADAPTERS = (0, 1, 4)


def make_adapters(base_dir: Path, out_dir: Path, n: int, rank: int) -> list[Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dirs = []
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    for seed in range(n):
        torch.manual_seed(seed)
        config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear", init_lora_weights=False)
        path = out_dir / f"adapter-{seed}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # PEFT calls a deprecated transformers API
            adapted = get_peft_model(model, config)
            adapted.save_pretrained(str(path))
            model = adapted.unload()  # the base again, for the next adapter
        (path / "base_model.json").write_text(json.dumps({"name": base_dir.name, "path": str(base_dir)}))
        dirs.append(path)
    return dirs


class Bench:
    def __init__(self, engine: LocalEngine, base_dir: Path, n_tokens: int) -> None:
        self.engine = engine
        self.n_tokens = n_tokens
        self.base = ModelRef(base_dir.name, str(base_dir), None, str(base_dir), 2048)
        tokenizer = engine.tokenizer(self.base)
        self.prompt = render_prompt(tokenizer, [{"role": "user", "content": PROMPT}])
        self.stops = tuple(stop_token_ids(tokenizer))
        # Forbid the end tokens: every request generates exactly n_tokens, whatever the random model says.
        self.params = SamplingParams(
            max_tokens=n_tokens, temperature=0.0, logprobs=0, logit_bias={s: -100.0 for s in self.stops}
        )

    def ref(self, adapter: Path | None) -> ModelRef:
        if adapter is None:
            return self.base
        return ModelRef(adapter.name, self.base.weights_path, str(adapter), self.base.tokenizer_path, 2048)

    async def one(self, adapter: Path | None) -> tuple[float, float, int]:
        """(time to first token, total time, tokens) of one request."""
        request = GenerationRequest(self.ref(adapter), self.prompt, self.params, self.stops)
        started = time.perf_counter()
        first, n_tokens = None, 0
        async for delta in self.engine.generate(request):
            first = first or time.perf_counter() - started
            n_tokens = delta.n_tokens
        return first or 0.0, time.perf_counter() - started, n_tokens

    def single(self, adapter: Path, repeats: int) -> dict[str, dict[str, float]]:
        """Base and adapter runs taken in turn, so that a busy machine slows both alike."""
        runs: dict[Path | None, list[tuple[float, float, int]]] = {None: [], adapter: []}
        for model in runs:
            asyncio.run(self.one(model))  # warm-up: loads the weights or the adapter
        for _ in range(repeats):
            for model, results in runs.items():
                results.append(asyncio.run(self.one(model)))
        return {
            "base" if model is None else "lora": {
                "ttft_ms": 1000 * statistics.median(r[0] for r in results),
                "decode_tokens_per_s": statistics.median((r[2] - 1) / (r[1] - r[0]) for r in results),
            }
            for model, results in runs.items()
        }

    def concurrent_vs_sequential(self, adapters: list[Path | None]) -> dict[str, float]:
        async def together() -> list[tuple[float, float, int]]:
            return await asyncio.gather(*(self.one(a) for a in adapters))

        for adapter in set(adapters):
            asyncio.run(self.one(adapter))  # warm-up
        started = time.perf_counter()
        sequential = [asyncio.run(self.one(a)) for a in adapters]
        sequential_s = time.perf_counter() - started
        started = time.perf_counter()
        concurrent = asyncio.run(together())
        concurrent_s = time.perf_counter() - started
        n_tokens = sum(r[2] for r in sequential)
        assert n_tokens == sum(r[2] for r in concurrent)
        return {
            "sequential_tokens_per_s": n_tokens / sequential_s,
            "concurrent_tokens_per_s": n_tokens / concurrent_s,
            "speedup": sequential_s / concurrent_s,
        }

    def against_generate(self, repeats: int, threads: int) -> dict[str, Any]:
        """The engine's single stream vs transformers `generate` on the same weights, in turn."""
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(threads)  # the engine's own count, for `generate` in this thread
        from openft.inference.weights import resolve_device

        device = resolve_device(self.engine.config.device)
        model = AutoModelForCausalLM.from_pretrained(self.base.weights_path, dtype=self.engine_dtype()).to(
            device
        )
        if self.engine_bf16_products():  # the same precision as the engine's: its bf16 linear layers
            use_bf16_products(model)
        model.eval()
        runs: dict[str, list[tuple[float, float, int]]] = {"engine": [], "generate": []}
        asyncio.run(self.one(None))  # warm-up of both
        hf_generate(model, self.prompt, self.n_tokens, self.stops)
        for _ in range(repeats):
            runs["engine"].append(asyncio.run(self.one(None)))
            runs["generate"].append(hf_generate(model, self.prompt, self.n_tokens, self.stops))
        figures: dict[str, Any] = {
            side: {
                "ttft_ms": 1000 * statistics.median(r[0] for r in results),
                "decode_tokens_per_s": statistics.median((r[2] - 1) / (r[1] - r[0]) for r in results),
                "tokens": results[0][2],
            }
            for side, results in runs.items()
        }
        figures["dtype"] = self.precision()
        figures["decode_ratio"] = (
            figures["engine"]["decode_tokens_per_s"] / figures["generate"]["decode_tokens_per_s"]
        )
        figures["ttft_ratio"] = figures["engine"]["ttft_ms"] / figures["generate"]["ttft_ms"]
        return figures

    def engine_dtype(self) -> Any:
        from openft.inference.weights import resolve_device, resolve_dtype

        return resolve_dtype(self.engine.config.dtype, resolve_device(self.engine.config.device))

    def precision(self) -> str:
        products = ", bf16 products" if self.engine_bf16_products() else ""
        return str(self.engine_dtype()).removeprefix("torch.") + products

    def engine_bf16_products(self) -> bool:
        from openft.inference.weights import bf16_products_for, resolve_device

        return bf16_products_for(self.engine.config.dtype, resolve_device(self.engine.config.device))

    def grid(self, adapters: list[Path], concurrency: tuple[int, ...], repeats: int) -> dict[str, Any]:
        """Aggregate tokens/s of c requests at once over 0, 1 and 4 adapters (round robin). Each cell is
        one run, except the first (the reference that gains are measured against): the median of
        `repeats`, so that one disturbed run on a shared machine does not skew a whole row."""

        async def together(models: list[Path | None]) -> list[tuple[float, float, int]]:
            return await asyncio.gather(*(self.one(m) for m in models))

        figures: dict[str, Any] = {}
        for n_adapters in GRID_ADAPTERS:
            pool: list[Path | None] = list(adapters[:n_adapters]) or [None]
            for model in pool:
                asyncio.run(self.one(model))  # warm-up: loads the weights or the adapter
            row: dict[str, Any] = {}
            for c in concurrency:
                models = [pool[i % len(pool)] for i in range(c)]
                speeds = []
                for _ in range(repeats if c == concurrency[0] else 1):
                    started = time.perf_counter()
                    results = asyncio.run(together(models))
                    speeds.append(sum(r[2] for r in results) / (time.perf_counter() - started))
                row[str(c)] = {"tokens_per_s": statistics.median(speeds)}
            single = row[str(concurrency[0])]["tokens_per_s"]
            for cell in row.values():
                cell["gain_over_1"] = cell["tokens_per_s"] / single
            figures[f"{n_adapters}_adapters"] = row
        return figures


def hf_generate(
    model: Any, prompt: list[int], n_tokens: int, stops: tuple[int, ...]
) -> tuple[float, float, int]:
    """(time to first token, total time, new tokens) of plain `generate`, greedy, end tokens suppressed."""
    import torch
    from transformers.generation.streamers import BaseStreamer

    class FirstToken(BaseStreamer):
        def __init__(self) -> None:
            self.calls, self.first_at = 0, 0.0

        def put(self, value: Any) -> None:
            self.calls += 1
            if self.calls == 2:  # the first call carries the prompt
                self.first_at = time.perf_counter()

        def end(self) -> None:
            pass

    streamer = FirstToken()
    ids = torch.tensor([prompt], device=model.device)
    started = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=n_tokens,
            do_sample=False,
            suppress_tokens=list(stops),
            streamer=streamer,
            pad_token_id=stops[0] if stops else None,
        )
    total = time.perf_counter() - started
    return streamer.first_at - started, total, out.shape[1] - ids.shape[1]


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / MB


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default="openft-small", choices=["openft-tiny", "openft-small", "smollm2-135m-instruct"]
    )
    parser.add_argument("--models-dir", type=Path, help="where models are built or converted (default: temp)")
    parser.add_argument("--tokens", type=int, default=128, help="tokens generated per request")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank of the adapters")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--dtype", default="auto", help="auto, float32, bfloat16 or float16 (see OPENFT_INFERENCE_DTYPE)"
    )
    parser.add_argument(
        "--generate", action="store_true", help="also: single stream vs transformers generate"
    )
    parser.add_argument("--grid", action="store_true", help="also: 1/4/8/16 at once over 0/1/4 adapters")
    parser.add_argument(
        "--concurrency",
        default=",".join(map(str, GRID_CONCURRENCY)),
        help="the grid's concurrent requests, comma-separated (the first is the reference)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="openft-bench-inference-"))
    base_dir = Catalog(args.models_dir or work / "models").resolve_path(args.model)
    adapters = make_adapters(base_dir, work / "adapters", 10, args.rank)
    config = EngineConfig(device=args.device, dtype=args.dtype, cpu_threads=args.threads)
    engine = LocalEngine(config)
    bench = Bench(engine, base_dir, args.tokens)
    figures: dict[str, Any] = {
        "model": args.model,
        "tokens_per_request": args.tokens,
        "threads": args.threads or shared_cpu_threads(),
    }
    figures["precision"] = bench.precision()
    try:
        figures |= bench.single(adapters[0], args.repeats)
        figures["adapter_overhead_pct"] = 100 * (
            1 - figures["lora"]["decode_tokens_per_s"] / figures["base"]["decode_tokens_per_s"]
        )
        figures["rss_mb_1_adapter"] = rss_mb()
        for adapter in adapters[1:]:
            asyncio.run(bench.one(adapter))
        figures["rss_mb_10_adapters"] = rss_mb()
        figures["adapter_cache_mb_10_adapters"] = engine.stats().adapter_bytes / MB
        figures["peak_rss_mb"] = peak_rss_mb()
        figures["batch_8_base"] = bench.concurrent_vs_sequential([None] * 8)
        figures["batch_8_over_4_adapters"] = bench.concurrent_vs_sequential(adapters[:4] * 2)
        if args.generate:
            figures["vs_generate"] = bench.against_generate(args.repeats, figures["threads"])
        if args.grid:
            concurrency = tuple(int(c) for c in args.concurrency.split(","))
            figures["grid"] = bench.grid(adapters, concurrency, args.repeats)
    finally:
        engine.close()
    print(json.dumps(figures, indent=2) if args.json else report(figures))


def report(f: dict[str, Any]) -> str:
    base, lora = f["base"], f["lora"]
    lines = [
        f"model {f['model']} ({f['precision']}), {f['tokens_per_request']} tokens per request, "
        f"threads {f['threads'] or 'default'}",
        f"  base        TTFT {base['ttft_ms']:7.1f} ms   decode {base['decode_tokens_per_s']:7.1f} tokens/s",
        f"  + LoRA      TTFT {lora['ttft_ms']:7.1f} ms   decode {lora['decode_tokens_per_s']:7.1f} tokens/s",
        f"  adapter overhead {f['adapter_overhead_pct']:.1f} % (goal <= 15 %)",
        f"  RSS with 1 adapter {f['rss_mb_1_adapter']:.0f} MB, "
        f"with 10 adapters {f['rss_mb_10_adapters']:.0f} MB "
        f"(adapter cache {f['adapter_cache_mb_10_adapters']:.1f} MB), peak {f['peak_rss_mb']:.0f} MB",
    ]
    for key, label in (
        ("batch_8_base", "8 requests, base"),
        ("batch_8_over_4_adapters", "8 requests, 4 adapters"),
    ):
        b = f[key]
        lines.append(
            f"  {label:24} sequential {b['sequential_tokens_per_s']:7.1f} tokens/s, "
            f"concurrent {b['concurrent_tokens_per_s']:7.1f} tokens/s ({b['speedup']:.2f}x)"
        )
    if "vs_generate" in f:
        g = f["vs_generate"]
        lines.append(f"  single stream, {g['dtype']} (goal: decode >= 1.0x generate)")
        for side in ("engine", "generate"):
            lines.append(
                f"    {side:9} TTFT {g[side]['ttft_ms']:7.1f} ms   "
                f"decode {g[side]['decode_tokens_per_s']:7.1f} tokens/s"
            )
        lines.append(f"    engine / generate: decode {g['decode_ratio']:.2f}x, TTFT {g['ttft_ratio']:.2f}x")
    for key, row in f.get("grid", {}).items():
        cells = ", ".join(
            f"{c} at once {cell['tokens_per_s']:6.1f} tokens/s ({cell['gain_over_1']:.2f}x)"
            for c, cell in row.items()
        )
        lines.append(f"  {key.replace('_', ' ')}: {cells}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
