"""Timed training runs, openft's recipe or TRL's SFTTrainer, in a process apart from the driver.

    python -m bench.gpu_train JOBS_JSON RESULTS_JSON

JOBS_JSON is a list (one job per process on a GPU, all of them in one for the CPU smoke run). A job
names the side (openft or trl), the model directory, the method (lora or full), the batch (examples per
step), the example lengths, the steps and a time budget. Both sides train the same examples, rendered
to the same token ids and loss masks by openft (TRL gets them as `input_ids` and `assistant_masks`),
with the same settings: bf16 autocast over fp32 weights on a GPU, AdamW, no gradient checkpointing,
LoRA r16 on every linear layer, one forward and backward per step (openft packs a step into one row,
TRL flattens it padding-free). The first `warmup_steps` are not timed (kernel selection, allocator
growth); each timed step ends with a device synchronization. A run stops after `steps` or once its
time budget is spent, whichever is first, and reports what it timed. openft runs stop by the
reporter's "cancel", so no checkpoint is written: saving a 1B model and its optimizer would cost more
than training it here.

RESULTS_JSON gets, per job, tokens/s, the FLOP rate (bench.gpu_models.train_flops_per_token), peak
memory and the first and last loss; or the error that stopped the job.
"""

from __future__ import annotations

import json
import math
import resource
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openft.train.environment import set_model_process_environment

GIB = 2**30


@dataclass
class StepClock:
    """Per-step end times and token counts, and the decision to stop."""

    steps: int
    budget_s: float
    device: Any
    started_at: float = 0.0
    ends: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)  # tokens of each step, in order
    losses: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.started_at = time.perf_counter()

    def step_done(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.ends.append(time.perf_counter())

    @property
    def should_stop(self) -> bool:
        return len(self.ends) >= self.steps or time.perf_counter() - self.started_at > self.budget_s

    def figures(self, warmup: int) -> dict[str, Any]:
        """Rates over the steps after the first `warmup` (all steps but the first when too few ran)."""
        n = len(self.ends)
        skip = min(warmup, n - 1) if n > 1 else 0
        t0 = self.ends[skip - 1] if skip else self.started_at
        seconds = self.ends[-1] - t0 if n else 0.0
        tokens = sum(self.tokens[skip:n])
        return {
            "steps_run": n,
            "steps_timed": n - skip,
            "tokens_timed": tokens,
            "seconds_timed": round(seconds, 4),
            "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None,
            "stopped_by": "steps" if n >= self.steps else "time budget",
            "first_loss": self.losses[0] if self.losses else None,
            "last_loss": self.losses[-1] if self.losses else None,
        }


# ---- openft -----------------------------------------------------------------------------------------


class ClockReporter:
    """openft's Reporter: times each step, keeps the losses, and cancels the run when the clock says."""

    def __init__(self, clock: StepClock) -> None:
        self.clock = clock
        self.messages: list[str] = []
        self.last_tokens = 0

    def message(self, text: str, level: str = "info") -> None:
        self.messages.append(text)
        if not self.clock.started_at:  # the recipe's first message: setup done, the loop starts
            self.clock.start()

    def metrics(self, step: int, total_steps: int, values: dict[str, float]) -> None:
        self.clock.step_done()
        self.clock.losses.append(values["train_loss"])

    def progress(self, step: int, total_steps: int, epoch: int, trained_tokens: int) -> None:
        self.clock.tokens.append(trained_tokens - self.last_tokens)
        self.last_tokens = trained_tokens

    def checkpoint(self, step: int, epoch: int, path: str, metrics: dict[str, float]) -> None:
        pass

    def control(self) -> str:
        return "cancel" if self.clock.should_stop else "continue"


def run_openft(job: dict[str, Any], device: Any, clock: StepClock) -> dict[str, Any]:
    from openft.train.config import SFTConfig
    from openft.train.sft import train_sft

    config = SFTConfig(
        base_model_path=job["model_dir"],
        base_model_name=job["model"],
        init_adapter_path=None,
        training_file=job["train_file"],
        validation_file=None,
        output_dir=str(Path(job["work_dir"]) / "openft-out"),
        n_epochs=1,
        batch_size=job["batch"],
        learning_rate_multiplier=1.0,
        learning_rate=job["learning_rate"],
        method=job["method"],
        lora_rank=job["lora_rank"],
        lora_alpha=2 * job["lora_rank"],
        lora_dropout=0.0,
        lora_target_modules=["all-linear"],
        max_seq_length=job["max_seq_length"],
        seed=0,
        warmup_ratio=0.05,
        weight_decay=0.0,
        max_grad_norm=1.0,
        eval_every_n_steps=10**9,
        n_valid_batch_examples=1,
        # One micro-batch per step, as TRL's one padding-free forward per step.
        max_tokens_per_micro_batch=job["batch"] * job["max_tokens"],
        precision="bf16" if device.type == "cuda" else "auto",
    )
    reporter = ClockReporter(clock)
    result = train_sft(config, reporter)
    start = reporter.messages[0] if reporter.messages else ""
    return {"status": result.status, "precision": "bf16" if "bf16" in start else "fp32"}


# ---- TRL --------------------------------------------------------------------------------------------


def run_trl(job: dict[str, Any], device: Any, clock: StepClock) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from openft.train.adapters import load_tokenizer
    from openft.train.examples import load_examples

    tokenizer = load_tokenizer(job["model_dir"])
    examples = load_examples(Path(job["train_file"]), tokenizer, job["max_seq_length"])
    data = Dataset.from_dict(
        {"input_ids": [e.input_ids for e in examples], "assistant_masks": [e.loss_mask for e in examples]}
    )
    model = AutoModelForCausalLM.from_pretrained(job["model_dir"], dtype=torch.float32)
    lora = None
    if job["method"] == "lora":
        rank = job["lora_rank"]
        lora = LoraConfig(
            r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
        )
    padding_free = job.get("trl_padding_free", True)
    args = SFTConfig(
        output_dir=str(Path(job["work_dir"]) / "trl-out"),
        max_steps=job["steps"],
        per_device_train_batch_size=job["batch"],
        learning_rate=job["learning_rate"],
        lr_scheduler_type="linear",
        warmup_steps=math.ceil(0.05 * job["steps"]),
        weight_decay=0.0,
        max_grad_norm=1.0,
        padding_free=padding_free,
        max_length=None if padding_free else job["max_seq_length"],
        bf16=device.type == "cuda",
        gradient_checkpointing=False,
        use_cpu=device.type != "cuda",
        dataloader_num_workers=0,
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=0,
        disable_tqdm=True,
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=lora
    )

    # Tokens of each batch in the order collated: batch k feeds step k, whatever the loader prefetches.
    collate = trainer.data_collator

    def counting_collate(features: list[dict[str, Any]]) -> Any:
        clock.tokens.append(sum(len(f["input_ids"]) for f in features))
        return collate(features)

    trainer.data_collator = counting_collate

    class Clock(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            clock.start()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            clock.step_done()
            if clock.should_stop:
                control.should_training_stop = True

    trainer.add_callback(Clock())
    trainer.train()
    clock.losses.extend(entry["loss"] for entry in trainer.state.log_history if "loss" in entry)
    del clock.tokens[len(clock.ends) :]
    return {
        "status": "succeeded",
        "precision": "bf16" if args.bf16 else "fp32",
        "trl_padding_free": padding_free,
        # Counted on the model TRL trained, as a check of the counts worked out from the shape.
        "n_trained_parameters_counted": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
    }


# ---- common -----------------------------------------------------------------------------------------


def run(job: dict[str, Any]) -> dict[str, Any]:
    import torch

    from bench.gpu_models import SHAPES, train_flops_per_token

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    clock = StepClock(job["steps"], job["budget_s"], device)
    started = time.perf_counter()
    side = run_openft if job["side"] == "openft" else run_trl
    result = side(job, device, clock)
    figures = clock.figures(job["warmup_steps"])
    out: dict[str, Any] = {
        key: job[key] for key in ("side", "model", "method", "batch", "min_tokens", "max_tokens")
    }
    out |= {"device": str(device), **result, **figures, "wall_s": round(time.perf_counter() - started, 1)}
    shape = SHAPES[job["model"]]
    n_base = shape.n_parameters()
    n_trained = n_base if job["method"] == "full" else shape.n_lora_parameters(job["lora_rank"])
    n_frozen = 0 if job["method"] == "full" else n_base
    out |= {"n_parameters": n_frozen + n_trained, "n_trained_parameters": n_trained}
    if figures["tokens_per_s"]:
        flops = train_flops_per_token(n_frozen, n_trained)
        out["flops_per_token"] = flops
        out["flop_count"] = "6·N" if job["method"] == "full" else "4·N_frozen + 6·N_lora"
        out["achieved_tflops"] = round(flops * figures["tokens_per_s"] / 1e12, 3)
    if device.type == "cuda":
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / GIB, 2)
        out["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved(device) / GIB, 2)
    else:
        out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    return out


def main() -> None:
    """Run each job of the list in JOB_JSON; RESULT_JSON holds the results so far after every one."""
    set_model_process_environment()
    jobs = json.loads(Path(sys.argv[1]).read_text())
    results: list[dict[str, Any]] = []
    for job in jobs:
        try:
            result = run(job)
        except Exception as exc:  # recorded, and the next job still runs
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        results.append(result)
        Path(sys.argv[2]).write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
