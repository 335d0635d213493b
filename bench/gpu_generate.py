"""Generation through openft's inference engine, in a process of its own: single-stream decode speed
and aggregate tokens/s at several concurrency levels, on the base model and spread over LoRA adapters.

    python -m bench.gpu_generate JOB_JSON RESULT_JSON

For each model of the job, with 0 and then `n_adapters` random LoRA adapters (rank 16, every linear
layer; requests dealt to them in turn, so batches mix adapters), `levels` requests are sent at once
(1, 8, 32 on a GPU) and the wall time until the last one ends gives the aggregate tokens/s. End tokens
are forbidden, so every request generates exactly `max_tokens` whatever the random weights say. Each
level is warmed up first with a short round (weights and adapters load, kernels get picked). The
single-stream decode rate is the one-request round's (tokens - 1) / (time after the first token).
Measurements stop, each one recorded as skipped, once the time budget is spent.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from openft.train.environment import set_model_process_environment

PROMPT = "Tell me about the lighthouse on the northern cape and the people who kept it."
GIB = 2**30


def make_adapters(model_dir: Path, out_dir: Path, n: int, rank: int, device: Any) -> list[Path]:
    """`n` adapters with random A and B (a fresh one would change nothing: B starts at zero).

    The model is built from its config on `device` (its weights do not matter here), so even a 1B
    model takes a moment; each adapter only redraws the LoRA weights before it is saved.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    paths = [out_dir / f"adapter-{i}" for i in range(n)]
    if all((p / "adapter_config.json").is_file() for p in paths):
        return paths
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(model_dir)))
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear", init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    for i, path in enumerate(paths):
        torch.manual_seed(1000 + i)
        with torch.no_grad():
            for name, parameter in peft_model.named_parameters():
                if "lora_" in name:
                    parameter.normal_(0.0, 0.02)
        peft_model.save_pretrained(str(path))
        (path / "base_model.json").write_text(json.dumps({"name": model_dir.name, "path": str(model_dir)}))
    del peft_model, model
    return paths


class Rounds:
    """Concurrent rounds of requests against one engine and one base model."""

    def __init__(self, engine: Any, model_dir: Path, context: int, max_tokens: int) -> None:
        from openft.data.render import render_prompt, stop_token_ids
        from openft.inference.types import ModelRef, SamplingParams

        self.engine = engine
        self.base = ModelRef(model_dir.name, str(model_dir), None, str(model_dir), context)
        tokenizer = engine.tokenizer(self.base)
        self.prompt = render_prompt(tokenizer, [{"role": "user", "content": PROMPT}])
        self.stops = tuple(stop_token_ids(tokenizer))
        self.params = {
            n: SamplingParams(max_tokens=n, temperature=0.0, logit_bias={s: -100.0 for s in self.stops})
            for n in (max_tokens, min(16, max_tokens))
        }
        self.max_tokens = max_tokens

    def ref(self, adapter: Path | None) -> Any:
        from openft.inference.types import ModelRef

        if adapter is None:
            return self.base
        base = self.base
        return ModelRef(
            adapter.name, base.weights_path, str(adapter), base.tokenizer_path, base.context_length
        )

    async def one(self, adapter: Path | None, max_tokens: int) -> tuple[float, float, int]:
        """(time to first token, total time, tokens) of one request."""
        from openft.inference.types import GenerationRequest

        request = GenerationRequest(self.ref(adapter), self.prompt, self.params[max_tokens], self.stops)
        started = time.perf_counter()
        first, n_tokens = 0.0, 0
        async for delta in self.engine.generate(request):
            first = first or time.perf_counter() - started
            n_tokens = delta.n_tokens
        return first, time.perf_counter() - started, n_tokens

    def round(
        self, adapters: list[Path | None], max_tokens: int
    ) -> tuple[float, list[tuple[float, float, int]]]:
        async def together() -> list[tuple[float, float, int]]:
            return list(await asyncio.gather(*(self.one(a, max_tokens) for a in adapters)))

        started = time.perf_counter()
        results = asyncio.run(together())
        return time.perf_counter() - started, results

    def measure(self, adapters: list[Path | None]) -> dict[str, Any]:
        self.round(adapters, min(16, self.max_tokens))  # warm-up
        seconds, results = self.round(adapters, self.max_tokens)
        n_tokens = sum(r[2] for r in results)
        decode = [(r[2] - 1) / (r[1] - r[0]) for r in results if r[2] > 1 and r[1] > r[0]]
        return {
            "n_tokens": n_tokens,
            "seconds": round(seconds, 4),
            "aggregate_tokens_per_s": round(n_tokens / seconds, 1),
            "median_ttft_ms": round(1000 * statistics.median(r[0] for r in results), 2),
            "median_decode_tokens_per_s_per_request": round(statistics.median(decode), 1) if decode else None,
        }


def measure_model(
    job: dict[str, Any], model: dict[str, Any], engine: Any, device: Any, deadline: float
) -> dict[str, Any]:
    model_dir = Path(model["model_dir"])
    adapters = make_adapters(
        model_dir,
        Path(job["work_dir"]) / f"adapters-{model['model']}",
        job["n_adapters"],
        job["lora_rank"],
        device,
    )
    rounds = Rounds(engine, model_dir, model["context"], job["max_tokens"])
    rows = []
    for n_adapters in (0, job["n_adapters"]):
        for level in job["levels"]:
            row: dict[str, Any] = {"n_adapters": n_adapters, "concurrency": level}
            if time.perf_counter() > deadline:
                rows.append(row | {"skipped": "time budget spent"})
                continue
            spread: list[Path | None] = [
                adapters[i % n_adapters] if n_adapters else None for i in range(level)
            ]
            rows.append(row | rounds.measure(spread))
    single = next(
        (r for r in rows if r["n_adapters"] == 0 and r["concurrency"] == 1 and "seconds" in r), None
    )
    summary: dict[str, Any] = {"model": model["model"], "rounds": rows}
    if single is not None:
        summary["single_stream_decode_tokens_per_s"] = single["median_decode_tokens_per_s_per_request"]
        for r in rows:
            if "seconds" in r and r["concurrency"] > 1 and single["aggregate_tokens_per_s"]:
                key = f"speedup_{r['concurrency']}_over_{r['n_adapters']}_adapters_vs_single"
                summary[key] = round(r["aggregate_tokens_per_s"] / single["aggregate_tokens_per_s"], 2)
    return summary


def run(job: dict[str, Any]) -> dict[str, Any]:
    import torch

    from openft.inference.config import EngineConfig
    from openft.inference.local import LocalEngine

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    deadline = time.perf_counter() + job["budget_s"]
    results: dict[str, Any] = {"device": str(device), "max_tokens": job["max_tokens"], "models": []}
    engine = LocalEngine(EngineConfig(device=str(device), max_batch_sequences=max(job["levels"])))
    try:
        for model in job["models"]:
            if time.perf_counter() > deadline:
                results["models"].append({"model": model["model"], "skipped": "time budget spent"})
                continue
            try:
                results["models"].append(measure_model(job, model, engine, device, deadline))
            except Exception as exc:  # one model's failure leaves the other's figures standing
                results["models"].append({"model": model["model"], "error": f"{type(exc).__name__}: {exc}"})
    finally:
        engine.close()
    if device.type == "cuda":
        results["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / GIB, 2)
    return results


def main() -> None:
    set_model_process_environment()
    job = json.loads(Path(sys.argv[1]).read_text())
    result = run(job)
    Path(sys.argv[2]).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
