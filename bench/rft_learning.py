"""Reinforcement fine-tuning: does a grader alone (no written answers) teach a chat model a task?

    .venv/bin/python -m bench.rft_learning [--task brief|routing] [--model smollm2-135m-instruct]
        [--models-dir DIR] [--n-train 32] [--n-held-out 8] [--n-epochs auto] [--batch-size auto]
        [--lr-multiplier auto] [--compute-multiplier auto] [--reasoning-effort low]

Tasks (each a grader a user of OpenAI's RFT would write; the base model does them badly):

- `brief` (default): factual questions (bench/learning_tasks.py's facts; the held-out questions ask
  facts training never asks) under the system message "Answer in at most five words." The base model
  knows many of the facts but answers in long sentences. Grader: a `multi` of a `string_check` (the
  fact occurs in the answer, ilike) and a `python` grader (1 for at most five words, then 0.1 less per
  extra word), reward = correct * short. Held-out success: right and at most five words.
- `routing`: a support ticket to one of five teams, the team name only. Grader: 0.3 * named (ilike)
  + 0.7 * exact (eq). The 135M base model almost never names a team (reward ~0.01), so there is
  little to reinforce: kept to show that limit.

The reinforcement recipe (openft.train.reinforce, resolved by openft.train.spec.resolve_job as a job
resolves it) trains on the training prompts with the held-out prompts as the validation file; then the
engine that serves /v1/chat/completions answers every held-out prompt greedily, base and fine-tuned.

Printed: the resolved hyperparameters; the valid reward mean at each validation; train reward mean
per epoch; held-out success base and fine-tuned; wall time and where it went (sampling, grading,
update, the rest: validation and setup). The last line is the whole result as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.learning_tasks import MARV_FACTS, MARV_HELD_OUT, routing_split

BRIEF_SYSTEM = "Answer in at most five words."
MAX_WORDS = 5
SHORT_SOURCE = f"""
def grade(sample, item):
    n = len(sample["output_text"].split())
    return 1.0 if 0 < n <= {MAX_WORDS} else max(0.0, 1.0 - 0.1 * (n - {MAX_WORDS}))
"""


def _string_check(name: str, operation: str) -> dict[str, Any]:
    return {
        "type": "string_check",
        "name": name,
        "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}",
        "operation": operation,
    }


BRIEF_GRADER: dict[str, Any] = {
    "type": "multi",
    "name": "brief",
    "graders": {
        "correct": _string_check("correct", "ilike"),
        "short": {"type": "python", "name": "short", "source": SHORT_SOURCE},
    },
    "calculate_output": "correct * short",
}
ROUTING_GRADER: dict[str, Any] = {
    "type": "multi",
    "name": "routing",
    "graders": {"named": _string_check("named", "ilike"), "exact": _string_check("exact", "eq")},
    "calculate_output": "0.3 * named + 0.7 * exact",
}

Line = dict[str, Any]  # {"messages": [...without the answer], "answer": "..."}


def brief_split(n_train: int, n_held_out: int, seed: int = 0) -> tuple[list[Line], list[Line]]:
    rng = random.Random(seed)
    seen, unseen = sorted(set(MARV_FACTS) - MARV_HELD_OUT), sorted(MARV_HELD_OUT)

    def line(question: str) -> Line:
        messages = [{"role": "system", "content": BRIEF_SYSTEM}, {"role": "user", "content": question}]
        return {"messages": messages, "answer": MARV_FACTS[question]}

    train = [line(seen[i % len(seen)]) for i in range(n_train)]
    rng.shuffle(train)
    return train, [line(unseen[i % len(unseen)]) for i in range(n_held_out)]


def brief_success(line: Line, reply: str) -> bool:
    return line["answer"].lower() in reply.lower() and 0 < len(reply.split()) <= MAX_WORDS


def routing_lines(n_train: int, n_held_out: int, seed: int = 0) -> tuple[list[Line], list[Line]]:
    train, held_out = routing_split(n_train, n_held_out, seed)
    return [{"messages": e["messages"][:-1], "answer": e["messages"][-1]["content"]} for e in train], [
        {"messages": e["messages"][:-1], "answer": e["messages"][-1]["content"]} for e in held_out
    ]


@dataclass(frozen=True)
class Task:
    grader: dict[str, Any]
    split: Callable[[int, int, int], tuple[list[Line], list[Line]]]
    success: Callable[[Line, str], bool]
    description: str


TASKS = {
    "brief": Task(
        BRIEF_GRADER, brief_split, brief_success, "multi: correct (ilike) * short (python, <= 5 words)"
    ),
    "routing": Task(
        ROUTING_GRADER,
        routing_lines,
        lambda line, reply: reply.strip() == line["answer"],
        "multi: 0.3 * named (ilike) + 0.7 * exact (eq)",
    ),
}
MAX_ANSWER_TOKENS = 32  # as the training samples at reasoning_effort "low"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="brief")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, default=Path.home() / ".openft" / "models")
    parser.add_argument("--n-train", type=int, default=32)
    parser.add_argument("--n-held-out", type=int, default=8)
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
        task = TASKS[args.task]
        result = run(task, args.model, args.models_dir, work, args.n_train, args.n_held_out, hyperparameters)
    result["task"] = args.task
    print(json.dumps(result), flush=True)
    return result


def _number(text: str, kind: type = float) -> Any:
    return "auto" if text == "auto" else kind(text)


def run(
    task: Task,
    model: str,
    models_dir: Path,
    work: Path,
    n_train: int,
    n_held_out: int,
    hyperparameters: dict[str, Any],
) -> dict[str, Any]:
    from openft.train.reinforce import train_reinforcement
    from openft.train.reporting import MemoryReporter
    from openft.train.spec import find_base_model, resolve_job

    base = find_base_model(models_dir, model)
    train, held_out = task.split(n_train, n_held_out, 0)
    work.mkdir(parents=True, exist_ok=True)
    config = resolve_job(
        "reinforcement",
        hyperparameters,
        base=base,
        training_file=_write(work / "train.jsonl", train),
        validation_file=_write(work / "held_out.jsonl", held_out),
        output_dir=work / "run",
        seed=0,
        grader=task.grader,
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
    spent["validation_and_setup"] = round(train_s - sum(spent.values()), 1)
    per_epoch = max(1, len(steps) // max(1, config.n_epochs))
    result = {
        "model": model,
        "n_train": len(train),
        "n_held_out": len(held_out),
        "grader": task.description,
        "hyperparameters": {
            "n_epochs": config.n_epochs,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "lora_rank": config.lora_rank,
            "group_size": settings.get("group_size"),
            "max_new_tokens": settings.get("max_new_tokens"),
            "temperature": settings.get("temperature"),
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
        "base_success": _success(task, held_out, base_answers),
        "fine_tuned_success": _success(task, held_out, tuned_answers),
        "base_reward_mean": _reward(task, held_out, base_answers),
        "fine_tuned_reward_mean": _reward(task, held_out, tuned_answers),
        "train_seconds": round(train_s, 1),
        "seconds_by_part": spent,
        "generate_seconds": round(generate_s, 1),
        "samples": [
            {"prompt": line["messages"][-1]["content"], "base": b.text, "fine_tuned": t.text}
            for line, b, t in list(zip(held_out, base_answers, tuned_answers, strict=True))[:4]
        ],
    }
    _print_summary(result)
    return result


def _write(path: Path, lines: list[Line]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _greedy_answers(model_paths: list[Path], lines: list[Line]) -> list[list[Any]]:
    """Greedy answers (temperature 0, as /v1/chat/completions) of each model to each held-out prompt."""
    from openft.comparison.local_runner import LocalRunner, local_engine, model_ref
    from openft.comparison.testset import TestCase

    cases = [
        TestCase(line=i + 1, reference=line["answer"], messages=tuple(line["messages"]))
        for i, line in enumerate(lines)
    ]
    with local_engine() as engine:
        return [
            LocalRunner(model_ref(path), engine).answer(cases, max_tokens=MAX_ANSWER_TOKENS)
            for path in model_paths
        ]


def _success(task: Task, lines: list[Line], answers: list[Any]) -> float:
    hits = sum(task.success(line, a.text) for line, a in zip(lines, answers, strict=True))
    return round(hits / max(1, len(lines)), 3)


def _reward(task: Task, lines: list[Line], answers: list[Any]) -> float:
    """The grader's mean reward on the greedy held-out answers, as the run's valid_reward_mean scores."""
    from openft.graders.run import grade_samples

    outcomes = grade_samples(task.grader, [(a.text, line) for line, a in zip(lines, answers, strict=True)])
    return round(sum(o.reward for o in outcomes) / max(1, len(outcomes)), 3)


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
        f"held-out success: base {result['base_success']:.2f} -> "
        f"fine-tuned {result['fine_tuned_success']:.2f}; held-out reward mean (greedy): base "
        f"{result['base_reward_mean']:.3f} -> fine-tuned {result['fine_tuned_reward_mean']:.3f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
