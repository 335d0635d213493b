"""Reinforcement fine-tuning: does a grader alone (no written answers) teach a chat model a task?

    .venv/bin/python -m bench.rft_learning [--model smollm2-135m-instruct] [--models-dir DIR]
        [--n-train 48] [--n-held-out 40] [--n-epochs auto] [--batch-size auto] [--lr-multiplier auto]
        [--compute-multiplier auto] [--reasoning-effort low]

The task: route a support ticket to one of five teams (bench/learning_tasks.py's routing prompts; the
system message asks for the team name only). The base model answers with a sentence, so an exact-match
grader alone would score every sampled answer 0 and teach nothing; the grader gives partial credit as
a user of OpenAI's RFT would write it, a `multi` of two `string_check`s:

    named: the right team's name occurs in the answer (ilike)    exact: the answer is the name (eq)
    reward = 0.3 * named + 0.7 * exact

The reinforcement recipe (openft.train.reinforce, resolved by openft.train.spec.resolve_job as a job
resolves it) trains on the training prompts with the held-out prompts as the validation file; then the
engine that serves /v1/chat/completions answers every held-out prompt greedily, base and fine-tuned.

Printed: the resolved hyperparameters; the valid reward mean at each validation (the first one is
measured after step 1's update), train reward mean per epoch; held-out exact match base and fine-tuned;
wall time and where it went (sampling, grading, update, validation). The last line is the whole
result as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.learning_tasks import routing_split, score_exact

GRADER: dict[str, Any] = {
    "type": "multi",
    "name": "routing",
    "graders": {
        "named": {
            "type": "string_check",
            "name": "named",
            "input": "{{sample.output_text}}",
            "reference": "{{item.team}}",
            "operation": "ilike",
        },
        "exact": {
            "type": "string_check",
            "name": "exact",
            "input": "{{sample.output_text}}",
            "reference": "{{item.team}}",
            "operation": "eq",
        },
    },
    "calculate_output": "0.3 * named + 0.7 * exact",
}
MAX_ANSWER_TOKENS = 16


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, default=Path.home() / ".openft" / "models")
    parser.add_argument("--n-train", type=int, default=48)
    parser.add_argument("--n-held-out", type=int, default=40)
    parser.add_argument("--work", type=Path, default=None, help="default: a temporary directory")
    for name in ("n-epochs", "batch-size", "lr-multiplier", "compute-multiplier", "eval-interval"):
        parser.add_argument(f"--{name}", default="auto")
    parser.add_argument("--reasoning-effort", default="low")
    args = parser.parse_args(argv)
    hyperparameters = {
        "n_epochs": _number(args.n_epochs, int),
        "batch_size": _number(args.batch_size, int),
        "learning_rate_multiplier": _number(args.lr_multiplier),
        "compute_multiplier": _number(args.compute_multiplier),
        "eval_interval": _number(args.eval_interval, int),
        "eval_samples": args.n_held_out,
        "reasoning_effort": args.reasoning_effort,
    }
    with tempfile.TemporaryDirectory(prefix="openft-rft-learning-") as scratch:
        work = args.work or Path(scratch)
        result = run(args.model, args.models_dir, work, args.n_train, args.n_held_out, hyperparameters)
    print(json.dumps(result), flush=True)
    return result


def _number(text: str, kind: type = float) -> Any:
    return "auto" if text == "auto" else kind(text)


def prompt_lines(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reinforcement lines: the messages without the answer, and the team the grader reads."""
    return [{"messages": e["messages"][:-1], "team": e["messages"][-1]["content"]} for e in examples]


def run(
    model: str, models_dir: Path, work: Path, n_train: int, n_held_out: int, hyperparameters: dict[str, Any]
) -> dict[str, Any]:
    from openft.train.reinforce import train_reinforcement
    from openft.train.reporting import MemoryReporter
    from openft.train.spec import find_base_model, resolve_job

    base = find_base_model(models_dir, model)
    train, held_out = routing_split(n_train, n_held_out, seed=0)
    work.mkdir(parents=True, exist_ok=True)
    train_file = _write(work / "train.jsonl", prompt_lines(train))
    valid_file = _write(work / "held_out.jsonl", prompt_lines(held_out))
    config = resolve_job(
        "reinforcement",
        hyperparameters,
        base=base,
        training_file=train_file,
        validation_file=valid_file,
        output_dir=work / "run",
        seed=0,
        grader=GRADER,
    )
    reporter = MemoryReporter()
    started = time.perf_counter()
    trained = train_reinforcement(config, reporter)
    train_s = time.perf_counter() - started
    if trained.status != "succeeded":
        raise SystemExit(f"the reinforcement run ended {trained.status}")
    gc.collect()

    started = time.perf_counter()
    assert trained.final_path is not None
    base_answers, tuned_answers = _greedy_answers([base.path(), Path(trained.final_path)], held_out)
    generate_s = time.perf_counter() - started
    steps = [values for _, _, values in reporter.steps]
    settings = config.reinforcement or {}
    parts = ("sampling", "grading", "update")
    spent = {part: round(sum(v.get(f"train_{part}_seconds", 0.0) for v in steps), 1) for part in parts}
    spent["validation"] = round(train_s - sum(spent.values()), 1)
    per_epoch = len(steps) // max(1, config.n_epochs)
    result = {
        "model": model,
        "n_train": len(train),
        "n_held_out": len(held_out),
        "grader": "multi: 0.3 * named (ilike) + 0.7 * exact (eq)",
        "hyperparameters": {
            "n_epochs": config.n_epochs,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "lora_rank": config.lora_rank,
            "group_size": settings.get("group_size"),
            "max_new_tokens": settings.get("max_new_tokens"),
            "eval_interval": settings.get("eval_interval"),
        },
        "steps": len(steps),
        "valid_reward_mean": [
            (step, round(v["valid_reward_mean"], 3))
            for step, v in enumerate(steps, start=1)
            if "valid_reward_mean" in v
        ],
        "train_reward_mean_per_epoch": [
            round(sum(v["train_reward_mean"] for v in steps[i : i + per_epoch]) / per_epoch, 3)
            for i in range(0, len(steps) - per_epoch + 1, per_epoch)
        ],
        "base_exact": _exact(held_out, base_answers),
        "fine_tuned_exact": _exact(held_out, tuned_answers),
        "train_seconds": round(train_s, 1),
        "seconds_by_part": spent,
        "generate_seconds": round(generate_s, 1),
        "samples": [
            {"prompt": e["messages"][1]["content"], "base": b.text, "fine_tuned": t.text}
            for e, b, t in list(zip(held_out, base_answers, tuned_answers, strict=True))[:3]
        ],
    }
    _print_summary(result)
    return result


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _greedy_answers(model_paths: list[Path], examples: list[dict[str, Any]]) -> list[list[Any]]:
    """Greedy answers (temperature 0, as /v1/chat/completions) of each model to each held-out prompt."""
    from openft.comparison.local_runner import LocalRunner, local_engine, model_ref
    from openft.comparison.testset import TestCase

    cases = [
        TestCase(line=i + 1, reference=e["messages"][-1]["content"], messages=tuple(e["messages"][:-1]))
        for i, e in enumerate(examples)
    ]
    with local_engine() as engine:
        return [
            LocalRunner(model_ref(path), engine).answer(cases, max_tokens=MAX_ANSWER_TOKENS)
            for path in model_paths
        ]


def _exact(examples: list[dict[str, Any]], answers: list[Any]) -> float:
    hits = sum(score_exact(e, a.text) for e, a in zip(examples, answers, strict=True))
    return round(hits / max(1, len(examples)), 3)


def _print_summary(result: dict[str, Any]) -> None:
    hp = result["hyperparameters"]
    print(
        f"{result['model']}: {result['n_train']} prompts, {result['n_held_out']} held out | LoRA "
        f"r{hp['lora_rank']}, {hp['n_epochs']} epochs, batch {hp['batch_size']}, group {hp['group_size']}, "
        f"lr {hp['learning_rate']:g}, {result['steps']} steps | train {result['train_seconds']:.0f} s "
        f"{result['seconds_by_part']}",
        file=sys.stderr,
    )
    print(
        f"valid reward mean by step {result['valid_reward_mean']}; train reward mean per epoch "
        f"{result['train_reward_mean_per_epoch']}",
        file=sys.stderr,
    )
    print(
        f"held-out exact match: base {result['base_exact']:.2f} -> "
        f"fine-tuned {result['fine_tuned_exact']:.2f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
