"""DPO throughput: openft's DPO recipe against TRL's DPOTrainer, same model, pairs and settings.

    .venv/bin/python -m bench.dpo_throughput [--model smollm2-135m-instruct] [--models-dir DIR]
        [--n-pairs 128] [--repeat 1] [--sides openft,trl-bf16,trl]

Both sides train the same preference pairs (bench/dpo_pairs.py), as the same token ids, in the same
order, one epoch: LoRA r16 / alpha 32 on all linear layers, batch 4 pairs, lr 1e-4 (what "auto"
resolves for smollm2-135m-instruct), linear schedule with 5 % warmup, beta 0.1, the sigmoid loss,
max length 1024 (no pair is cut), the reference being the base model (LoRA adapter disabled: no second
copy on either side). openft's pairs are tokenized by its recipe; TRL gets the same ids, split into the
prompt and the trained output (openft's loss mask), and walks them in openft's step order, so the two
loss curves can be compared step by step.

Sides: `openft` (precision "auto": bf16 mixed precision on CPUs with native bf16, else fp32),
`openft-fp32`, `trl` (fp32, TRL's default on a CPU) and `trl-bf16` (`bf16=True`: autocast to bf16).
Each side runs in a fresh process, so its peak RSS is its own. TRL computes the reference's
log-probabilities inside every step (its default); openft computes them once before the first step,
inside the timed loop. Timed: openft from its start message (model built) to its last step; TRL its
`train()` call. Tokens: both conversations of every pair (prompt and output each time), as openft
counts them, the same number on both sides.

Printed per side: tokens/s, tokens per CPU-second, peak RSS, first and last training loss (and the
mean of the last five steps); then each openft side over each TRL side, and the largest step-by-step
difference of their loss curves. TRL is optional: without it (pip install trl datasets) only openft's
sides run. Compare only figures of one run on one machine (--repeat N alternates sides, keeps the best).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.dpo_pairs import make_pairs, write_pairs
from bench.train_throughput import TimedReporter, _peak_rss_mib

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = dict(
    lora_rank=16, lora_alpha=32, learning_rate=1e-4, batch_size=4, beta=0.1, warmup_ratio=0.05, seed=0
)
MAX_LENGTH = 1024


def _pairs_file(work: Path, n_pairs: int) -> Path:
    path = work / f"pairs-{n_pairs}.jsonl"
    if not path.is_file():
        write_pairs(path, make_pairs(n_pairs, seed=0))
    return path


def _model_path(model: str, models_dir: Path) -> Path:
    from openft.train.spec import find_base_model

    return find_base_model(models_dir, model).path()


# ---- one side per process ---------------------------------------------------------------------------


def run_openft(work: Path, model_path: Path, n_pairs: int, precision: str = "auto") -> dict[str, Any]:
    import torch

    from openft.train.config import SFTConfig
    from openft.train.dpo import train_dpo

    config = SFTConfig(
        base_model_path=str(model_path),
        base_model_name="bench",
        init_adapter_path=None,
        training_file=str(_pairs_file(work, n_pairs)),
        validation_file=None,
        output_dir=str(work / f"openft-out-{os.getpid()}"),
        n_epochs=1,
        batch_size=SETTINGS["batch_size"],
        learning_rate_multiplier=1.0,
        learning_rate=SETTINGS["learning_rate"],
        method="lora",
        lora_rank=SETTINGS["lora_rank"],
        lora_alpha=SETTINGS["lora_alpha"],
        lora_dropout=0.0,
        lora_target_modules=["all-linear"],
        max_seq_length=MAX_LENGTH,
        seed=SETTINGS["seed"],
        warmup_ratio=SETTINGS["warmup_ratio"],
        weight_decay=0.0,
        max_grad_norm=1.0,
        eval_every_n_steps=10**9,
        n_valid_batch_examples=1,
        precision=precision,
        training_method="dpo",
        beta=SETTINGS["beta"],
    )
    reporter = TimedReporter()
    result = train_dpo(config, reporter)
    seconds = reporter.last_step_at - reporter.started_at
    cpu_seconds = reporter.last_step_cpu - reporter.started_cpu
    return {
        "side": "openft" if precision == "auto" else f"openft-{precision}",
        "precision": reporter.precision,
        "threads": torch.get_num_threads(),
        "train_tokens": result.trained_tokens,
        **_speed_and_losses(result.trained_tokens, seconds, cpu_seconds, reporter.train_losses),
    }


def run_trl(work: Path, model_path: Path, n_pairs: int, bf16: bool = False) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from torch.utils.data import SequentialSampler
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from openft.train.adapters import load_tokenizer
    from openft.train.plan import epoch_order
    from openft.train.preference import load_pairs

    tokenizer = load_tokenizer(model_path)
    pairs = load_pairs(_pairs_file(work, n_pairs), tokenizer, MAX_LENGTH)
    # openft's first-epoch order, walked in sequence: the same pairs in the same steps as openft.
    ordered = [pairs[i] for i in epoch_order(len(pairs), SETTINGS["seed"], 1)]
    rows = [_trl_row(pair.preferred, pair.non_preferred) for pair in ordered]
    data = Dataset.from_dict({key: [row[key] for row in rows] for key in rows[0]})

    class SameOrderDPOTrainer(DPOTrainer):  # type: ignore[misc]
        """TRL's trainer on ids that are already tokenized, in the order given."""

        def _prepare_dataset(self, dataset: Any, *args: Any, **kwargs: Any) -> Any:
            return dataset

        def _get_train_sampler(self, *args: Any, **kwargs: Any) -> Any:
            return SequentialSampler(self.train_dataset)

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    lora = LoraConfig(
        r=SETTINGS["lora_rank"],
        lora_alpha=SETTINGS["lora_alpha"],
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    args = DPOConfig(
        output_dir=str(work / f"trl-out-{os.getpid()}"),
        num_train_epochs=1,
        per_device_train_batch_size=SETTINGS["batch_size"],
        learning_rate=SETTINGS["learning_rate"],
        lr_scheduler_type="linear",
        warmup_steps=SETTINGS["warmup_ratio"],
        weight_decay=0.0,
        max_grad_norm=1.0,
        beta=SETTINGS["beta"],
        loss_type=["sigmoid"],
        max_length=MAX_LENGTH,
        bf16=bf16,  # on a CPU: autocast to bf16, as openft's bf16 mixed precision
        gradient_checkpointing=False,
        use_cpu=True,
        dataloader_num_workers=0,
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=SETTINGS["seed"],
        disable_tqdm=True,
    )
    trainer = SameOrderDPOTrainer(
        model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=lora
    )
    tokens = sum(pair.n_tokens for pair in pairs)
    start, start_cpu = time.perf_counter(), time.process_time()
    trainer.train()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        "side": "trl-bf16" if bf16 else "trl",
        "precision": "bf16" if bf16 else "fp32",
        "threads": torch.get_num_threads(),
        "train_tokens": tokens,
        **_speed_and_losses(tokens, seconds, cpu_seconds, losses),
    }


def _trl_row(preferred: Any, non_preferred: Any) -> dict[str, list[int]]:
    """TRL's tokenized columns: the prompt, then each output through its last trained token (openft's
    loss mask), so both sides put the loss on exactly the same tokens."""

    def split(example: Any) -> tuple[list[int], list[int]]:
        trained = [i for i, flag in enumerate(example.loss_mask) if flag]
        return example.input_ids[: trained[0]], example.input_ids[trained[0] : trained[-1] + 1]

    prompt, chosen = split(preferred)
    prompt_again, rejected = split(non_preferred)
    assert prompt == prompt_again, "both outputs of a pair follow the same prompt"
    return {"prompt_ids": prompt, "chosen_ids": chosen, "rejected_ids": rejected}


def _speed_and_losses(tokens: int, seconds: float, cpu_seconds: float, losses: list[float]) -> dict[str, Any]:
    tail = losses[-5:]
    return {
        "train_seconds": round(seconds, 1),
        "tokens_per_s": round(tokens / seconds, 1),
        "tokens_per_cpu_s": round(tokens / cpu_seconds, 1),
        "first_loss": round(losses[0], 4),
        "last_loss": round(losses[-1], 4),
        "last5_mean_loss": round(sum(tail) / len(tail), 4),
        "losses": [round(loss, 4) for loss in losses],
        "peak_rss_mib": _peak_rss_mib(),
    }


# ---- the driver -------------------------------------------------------------------------------------

SIDES: dict[str, Any] = {
    "openft": run_openft,
    "openft-fp32": lambda work, model, n: run_openft(work, model, n, "fp32"),
    "trl": run_trl,
    "trl-bf16": lambda work, model, n: run_trl(work, model, n, bf16=True),
}
DEFAULT_SIDES = ("openft", "trl-bf16", "trl")


def _side(name: str, work: Path, model_path: Path, n_pairs: int) -> dict[str, Any] | None:
    command = [sys.executable, "-m", "bench.dpo_throughput", "--side", name, "--work", str(work)]
    command += ["--model-path", str(model_path), "--n-pairs", str(n_pairs)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        print(f"{name} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        return None
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def has_trl() -> bool:
    try:
        import datasets  # noqa: F401
        import trl  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, default=Path.home() / ".openft" / "models")
    parser.add_argument("--n-pairs", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=1, help="runs per side, alternating; the best counts")
    parser.add_argument("--work", type=Path, default=Path("/tmp/openft-bench-dpo"))
    parser.add_argument(
        "--sides", default=",".join(DEFAULT_SIDES), help=f"comma-separated, from {', '.join(SIDES)}"
    )
    parser.add_argument("--side", choices=list(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--model-path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.side:
        print(json.dumps(SIDES[args.side](args.work, args.model_path, args.n_pairs)))
        return {}

    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(libgomp default)')}", file=sys.stderr)
    model_path = _model_path(args.model, args.models_dir)  # converted or built once, here
    _pairs_file(args.work, args.n_pairs)
    requested = args.sides.split(",")
    sides = [side for side in requested if has_trl() or not side.startswith("trl")]
    if len(sides) < len(requested):
        print("TRL is not installed: running openft only (pip install trl datasets)", file=sys.stderr)
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for _ in range(args.repeat):
        for side in sides:
            result = _side(side, args.work, model_path, args.n_pairs)
            if result is not None:
                print(json.dumps(result), flush=True)
                results[side].append(result)
    best = {side: max(runs, key=lambda r: r["tokens_per_s"]) for side, runs in results.items() if runs}
    summary = {"model": args.model, "n_pairs": args.n_pairs, "sides": best, "ratios": _ratios(best)}
    _print_table(summary)
    print(json.dumps(summary), flush=True)
    return summary


def _ratios(best: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    ratios = {}
    for ours_side in (s for s in best if s.startswith("openft")):
        for theirs_side in (s for s in best if s.startswith("trl")):
            ours, theirs = best[ours_side], best[theirs_side]
            gaps = [abs(a - b) for a, b in zip(ours["losses"], theirs["losses"], strict=False)]
            ratios[f"{ours_side}/{theirs_side}"] = {
                "tokens_per_s": round(ours["tokens_per_s"] / theirs["tokens_per_s"], 2),
                "tokens_per_cpu_s": round(ours["tokens_per_cpu_s"] / theirs["tokens_per_cpu_s"], 2),
                "peak_rss": round(ours["peak_rss_mib"] / theirs["peak_rss_mib"], 2),
                "max_loss_gap": round(max(gaps), 4),
                "mean_loss_gap": round(sum(gaps) / len(gaps), 4),
            }
    return ratios


def _print_table(summary: dict[str, Any]) -> None:
    print(
        f"\n{'side':12} {'precision':>9} {'tokens/s':>9} {'tokens/CPU-s':>13} {'peak RSS MiB':>13} "
        f"{'loss first':>10} {'last':>7} {'last-5 mean':>11}",
        file=sys.stderr,
    )
    for side, run in summary["sides"].items():
        print(
            f"{side:12} {run['precision']:>9} {run['tokens_per_s']:>9,.0f} {run['tokens_per_cpu_s']:>13,.0f} "
            f"{run['peak_rss_mib']:>13,} {run['first_loss']:>10.4f} {run['last_loss']:>7.4f} "
            f"{run['last5_mean_loss']:>11.4f}",
            file=sys.stderr,
        )
    for pair, ratio in summary["ratios"].items():
        print(
            f"{pair}: {ratio['tokens_per_s']:.2f}x tokens/s "
            f"({ratio['tokens_per_cpu_s']:.2f}x per CPU-second), "
            f"{ratio['peak_rss']:.2f}x peak RSS, loss curves differ by at most {ratio['max_loss_gap']:.4f} "
            f"(mean {ratio['mean_loss_gap']:.4f})",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
