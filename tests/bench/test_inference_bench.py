"""bench/inference.py end to end on openft-tiny with tiny sizes: every figure it promises is printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generate_and_grid_figures_are_printed(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(ROOT / "bench" / "inference.py"),
        *("--model", "openft-tiny", "--models-dir", str(tmp_path / "models")),
        *("--tokens", "4", "--repeats", "1", "--threads", "1", "--concurrency", "1,3"),
        *("--generate", "--grid", "--json"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)

    assert (figures["model"], figures["tokens_per_request"], figures["threads"]) == ("openft-tiny", 4, 1)
    assert figures["rss_mb_10_adapters"] > 0 and figures["adapter_cache_mb_10_adapters"] > 0
    versus = figures["vs_generate"]
    # Both sides in the engine's precision: float32, with bf16 products on a CPU that has native bf16.
    from openft.train.precision import cpu_has_native_bf16

    precision = "float32, bf16 products" if cpu_has_native_bf16() else "float32"
    assert versus["dtype"] == figures["precision"] == precision
    for side in ("engine", "generate"):
        # End tokens are suppressed on both sides, so each generates exactly the tokens asked for.
        assert versus[side]["tokens"] == 4
        assert versus[side]["ttft_ms"] > 0 and versus[side]["decode_tokens_per_s"] > 0
    assert versus["decode_ratio"] > 0 and versus["ttft_ratio"] > 0
    grid = figures["grid"]
    assert list(grid) == ["0_adapters", "1_adapters", "4_adapters"]
    for row in grid.values():
        assert list(row) == ["1", "3"]
        assert row["1"]["gain_over_1"] == 1.0
        assert row["3"]["tokens_per_s"] > 0


def test_fairness_figures_are_printed_for_a_catalog_model(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(ROOT / "bench" / "inference_fairness.py"),
        *("--model", "openft-tiny", "--models-dir", str(tmp_path / "models")),
        *("--short-tokens", "4", "--long-tokens", "64", "--n-short", "2", "--threads", "1", "--json"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert (figures["model"], figures["short_tokens"], figures["long_tokens"]) == ("openft-tiny", 4, 64)
    assert figures["p50_alone_s"] > 0 and figures["p50_with_long_s"] > 0
    # The short requests ran while the long one was generating, not after it.
    assert figures["long_still_running"] and figures["long_tokens_meanwhile"] > 0
    assert (tmp_path / "models" / "openft-tiny" / "config.json").is_file()
