"""How long `POST /v1/fine_tuning/alpha/graders/run` takes for each grader type, measured through the
official SDK against a fresh `openft serve` (no worker) on a temporary data dir.

    .venv/bin/python -m bench.grader_latency [--runs 20] [--judge smollm2-135m-instruct]

For each grader: the first call (cold: a python grader's sandbox process, the embedding model or the
judge model loaded on first use) and the median and 90th percentile of the next `--runs` calls, in
milliseconds, client-measured (HTTP included), beside the `execution_time` the server reports. The
judge is any model the server serves (default: the pretrained smollm2-135m-instruct, which must be
installed; `openft-tiny` is built in). The last line is the whole result as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from openai import OpenAI

from bench.live_server import start_server

SAMPLE = '{"team": "billing", "reply": "The billing team will refund the double charge."}'
ITEM = {"team": "billing", "reply": "Billing will refund you the extra charge."}


def graders(judge: str) -> dict[str, dict[str, Any]]:
    def similarity(metric: str) -> dict[str, Any]:
        return {
            "type": "text_similarity",
            "name": metric,
            "input": "{{sample.output_json.reply}}",
            "reference": "{{item.reply}}",
            "evaluation_metric": metric,
        }

    exact = {
        "type": "string_check",
        "name": "exact",
        "input": "{{sample.output_json.team}}",
        "reference": "{{item.team}}",
        "operation": "eq",
    }
    python = {
        "type": "python",
        "name": "short",
        "source": "def grade(sample, item):\n    return 1.0 if len(sample['output_text']) < 200 else 0.0\n",
    }
    score = {
        "type": "score_model",
        "name": "judge",
        "model": judge,
        "input": [
            {
                "role": "user",
                "content": "Does the reply say the same as the expected one? Reply: "
                "{{sample.output_json.reply}} Expected: {{item.reply}} Give a score between 0 and 1.",
            },
        ],
        "range": [0, 1],
        "sampling_params": {"max_completions_tokens": 8},
    }
    return {
        "string_check": exact,
        "text_similarity (rouge_l)": similarity("rouge_l"),
        "text_similarity (bleu)": similarity("bleu"),
        "text_similarity (cosine)": similarity("cosine"),
        "text_similarity (meteor)": similarity("meteor"),
        "python": python,
        "score_model": score,
        "multi (string_check + rouge_l + python)": {
            "type": "multi",
            "name": "multi",
            "graders": {"exact": exact, "close": similarity("rouge_l"), "short": python},
            "calculate_output": "0.5 * exact + 0.25 * close + 0.25 * short",
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--judge", default="smollm2-135m-instruct")
    parser.add_argument("--only", default="", help="measure only the graders whose name contains this")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="openft-grader-latency-") as scratch:
        process, base_url = start_server(Path(scratch), worker=False)
        try:
            client = OpenAI(base_url=base_url, api_key="local", timeout=600)
            for name, grader in graders(args.judge).items():
                if args.only not in name:
                    continue
                results[name] = measure(client, grader, args.runs)
                row = results[name]
                print(
                    f"{name:42s} cold {row['cold_ms']:8.0f} ms | warm p50 {row['p50_ms']:7.1f} ms, "
                    f"p90 {row['p90_ms']:7.1f} ms (server {row['server_p50_ms']:7.1f} ms) | "
                    f"reward {row['reward']:.3f} {' '.join(row['flags'])}",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            process.terminate()
            process.wait(timeout=30)
    out = {"runs": args.runs, "judge": args.judge, "graders": results}
    print(json.dumps(out), flush=True)
    return out


def measure(client: OpenAI, grader: dict[str, Any], runs: int) -> dict[str, Any]:
    run = client.fine_tuning.alpha.graders.run
    started = time.perf_counter()
    first = run(grader=grader, model_sample=SAMPLE, item=ITEM)  # type: ignore[arg-type]
    cold = time.perf_counter() - started
    # A judge that answers without a number is flagged (model_grader_parse_error), not an error here.
    flags = sorted(k for k, v in first.metadata.errors.model_dump().items() if v is True)
    client_ms, server_ms = [], []
    for _ in range(runs):
        started = time.perf_counter()
        result = run(grader=grader, model_sample=SAMPLE, item=ITEM)  # type: ignore[arg-type]
        client_ms.append((time.perf_counter() - started) * 1000)
        server_ms.append(result.metadata.execution_time * 1000)
    return {
        "cold_ms": round(cold * 1000, 1),
        "p50_ms": round(statistics.median(client_ms), 1),
        "p90_ms": round(statistics.quantiles(client_ms, n=10)[-1], 1),
        "server_p50_ms": round(statistics.median(server_ms), 1),
        "reward": first.reward,
        "flags": flags,
    }


if __name__ == "__main__":
    main()
