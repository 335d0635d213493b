"""Precision: "auto" resolution, rows padded for bf16 on a CPU without changing the loss, a bf16 run."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
import torch

from openft.train.adapters import load_base_model, load_tokenizer
from openft.train.environment import KERNEL_CACHE_VARIABLES
from openft.train.examples import TokenizedExample, tokenize_example
from openft.train.loss import TokenLoss
from openft.train.packing import IGNORED_TARGET, pack, packed_attention_enabled
from openft.train.precision import (
    CPU_BF16_ROW_MULTIPLE,
    cpu_has_native_bf16,
    resolve_precision,
    row_multiple_for,
)
from openft.train.spec import ConfigError

CPU = torch.device("cpu")
CONVERSATIONS = [
    [{"role": "user", "content": "Capital of Peru?"}, {"role": "assistant", "content": "Lima"}],
    [{"role": "user", "content": "Spell cat backwards"}, {"role": "assistant", "content": "tac"}],
    [{"role": "user", "content": "Two plus two?"}, {"role": "assistant", "content": "Four, of course."}],
]


def test_explicit_precision_is_kept_and_auto_follows_the_cpu() -> None:
    assert resolve_precision("fp32", CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"
    assert resolve_precision("auto", CPU) == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert row_multiple_for(CPU, "bf16") == CPU_BF16_ROW_MULTIPLE
    assert row_multiple_for(CPU, "fp32") == 1
    assert row_multiple_for(torch.device("cuda"), "bf16") == 1


def test_config_rejects_an_unknown_precision(reference_run: Any) -> None:
    with pytest.raises(ConfigError, match="precision must be one of auto, bf16, fp32, got 'fp16'"):
        dataclasses.replace(reference_run.config, precision="fp16")


def test_padding_adds_a_segment_of_its_own_and_targets_without_loss() -> None:
    a = TokenizedExample([1, 2, 3, 4], [0, 0, 1, 1])
    b = TokenizedExample([5, 6, 7], [0, 1, 0])
    batch = pack([a, b], pad_to_multiple=4)
    assert batch.input_ids.shape == (1, 8)
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2, 0]]
    assert batch.seq_lens == [4, 3, 1]
    assert batch.targets.tolist() == [3, 4, 6, IGNORED_TARGET]
    assert (batch.n_tokens, batch.n_targets) == (7, 3)
    unpadded = pack([a, b], pad_to_multiple=1)
    assert (unpadded.input_ids.shape, unpadded.seq_lens) == ((1, 7), [4, 3])


@pytest.mark.parametrize("packed", [True, False])
def test_padding_changes_neither_loss_nor_hits(tiny_model: Path, packed: bool) -> None:
    tokenizer = load_tokenizer(tiny_model)
    model = load_base_model(tiny_model)
    examples = [tokenize_example(tokenizer, {"messages": m}, 2048) for m in CONVERSATIONS]
    groups = [examples] if packed else [[e] for e in examples]
    loss = TokenLoss(model, packed=packed)

    def totals(multiple: int) -> tuple[float, float]:
        loss_sum = n_correct = 0.0
        with torch.no_grad(), packed_attention_enabled(model) if packed else nullcontext():
            for group in groups:
                batch = pack(group, pad_to_multiple=multiple)
                assert batch.input_ids.shape[1] % multiple == 0
                assert batch.targets.numel() % multiple == 0
                s, c = loss(batch)
                loss_sum, n_correct = loss_sum + s.item(), n_correct + c.item()
        return loss_sum, n_correct

    plain, padded = totals(1), totals(64)
    assert padded[0] == pytest.approx(plain[0], rel=1e-5)
    assert padded[1] == plain[1]


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16 instructions")
def test_bf16_run_learns_like_fp32(reference_run: Any, tmp_path: Path) -> None:
    """The reference config in bf16 and in fp32: both learn, and their losses stay close step by step."""
    from openft.train.reporting import MemoryReporter
    from openft.train.sft import train_sft

    losses = {}
    for precision in ("bf16", "fp32"):
        config = dataclasses.replace(
            reference_run.config, output_dir=str(tmp_path / precision), precision=precision
        )
        reporter = MemoryReporter()
        train_sft(config, reporter)
        assert ("bf16 mixed precision" if precision == "bf16" else "fp32") in reporter.messages[0][1]
        losses[precision] = reporter.train_losses
    assert losses["bf16"][-1] < 0.8 * losses["bf16"][0]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.02)


_KERNEL_GROWTH_SCRIPT = """
import sys
from openft.train.environment import set_model_process_environment
if sys.argv[1] == "training":
    set_model_process_environment(training=True)
import torch

def rss_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20

torch.manual_seed(0)
weights = [torch.randn(n, k, dtype=torch.bfloat16) for n, k in [(1536, 576), (576, 1536), (192, 576)]]
rows = [torch.randn(2048, w.shape[1], dtype=torch.bfloat16) for w in weights]
outs = [torch.empty(2048, w.shape[0], dtype=torch.bfloat16) for w in weights]
for x, w, out in zip(rows, weights, outs):
    torch.mm(x[:16], w.t(), out=out[:16])
before = rss_mib()
for m in range(32, 2049, 8):  # 253 row counts: a new shape for each product
    for x, w, out in zip(rows, weights, outs):
        torch.mm(x[:m], w.t(), out=out[:m])
print(rss_mib() - before)
"""


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16 instructions")
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the RSS from /proc")
def test_a_training_process_keeps_few_bf16_kernels_however_many_shapes_it_meets() -> None:
    """oneDNN keeps a kernel per matrix shape; a training process's small caches bound that memory,
    which is what lets its packed rows be padded to only CPU_BF16_ROW_MULTIPLE tokens."""
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_CACHE_VARIABLES}

    def growth_mib(kind: str) -> float:
        done = subprocess.run(
            [sys.executable, "-c", _KERNEL_GROWTH_SCRIPT, kind],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return float(done.stdout.strip().splitlines()[-1])

    unbounded, training = growth_mib("default"), growth_mib("training")
    assert unbounded > 200  # 759 shapes, about 0.6 MB of kernel each (measured: 500 MiB)
    assert training < unbounded / 4  # measured: 65 MiB
