"""DPO learning: does preference fine-tuning with "auto" hyperparameters teach a chat model a behaviour?

    .venv/bin/python -m bench.dpo_learning [--model smollm2-135m-instruct] [--models-dir DIR]
        [--n-train 160] [--n-held-out 40] [--beta auto] [--sft-weight auto] [--lr-multiplier auto]
        [--n-epochs auto] [--on-policy] [--other-closing TEXT] [--supervised-only]

The task (bench/dpo_pairs.py): a shop's support answers, preferred with a signature line, non-preferred
without it; held-out prompts come from question templates training never sees. The DPO recipe
(openft.train.dpo, resolved by openft.train.spec.resolve_job as a job resolves it) trains on the
training pairs with the held-out pairs as the validation file; then the inference engine that serves
/v1/chat/completions answers every held-out prompt greedily, with the base model and with the
fine-tuned one. `--sft-weight 0` trains plain DPO (no supervised term on the preferred outputs), and
`--supervised-only` trains no DPO at all: supervised fine-tuning ("auto") on the preferred outputs
alone, to tell what the preference adds to imitation. With --on-policy the training pairs are rebuilt
on the base model's own greedy answers (answer + signature against the bare answer; answers it does not
finish are dropped): the model then learns what to do after the answers it actually gives.

Printed: the resolved hyperparameters; the held-out reward accuracy (the share of held-out pairs whose
preferred output earns the higher implicit reward) at the first validation window and at each epoch
end (at step 0 the policy is the reference, so every reward is 0); how often the base model itself
scores the preferred output higher (its log-probabilities, from the run's reference file); the share
of greedy answers that end with the signature, base and fine-tuned; training and generation wall time.
The last line is the whole result as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.dpo_pairs import SIGNATURE, is_signed, make_pairs, write_pairs

if TYPE_CHECKING:
    from openft.comparison.runners import Answer

# Room for a reply of two sentences and the signature; the base model's longer replies are cut here.
MAX_ANSWER_TOKENS = 96


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, default=Path.home() / ".openft" / "models")
    parser.add_argument("--n-train", type=int, default=160)
    parser.add_argument("--n-held-out", type=int, default=40)
    parser.add_argument("--work", type=Path, default=None, help="default: a temporary directory")
    for name in ("beta", "sft-weight", "lr-multiplier", "n-epochs", "batch-size"):
        parser.add_argument(f"--{name}", default="auto")
    parser.add_argument(
        "--supervised-only",
        action="store_true",
        help="train supervised on the preferred outputs alone instead of DPO (a comparison)",
    )
    parser.add_argument(
        "--on-policy",
        action="store_true",
        help="build the training pairs on the base model's own greedy answers instead of the templates'",
    )
    parser.add_argument(
        "--other-closing",
        default="",
        help="end the non-preferred training answers with this line instead of bare (e.g. 'Best regards.')",
    )
    args = parser.parse_args(argv)
    hyperparameters = {
        "beta": _number(args.beta),
        "sft_weight": None if args.sft_weight == "auto" else float(args.sft_weight),
        "learning_rate_multiplier": _number(args.lr_multiplier),
        "n_epochs": _number(args.n_epochs, int),
        "batch_size": _number(args.batch_size, int),
    }
    with tempfile.TemporaryDirectory(prefix="openft-dpo-learning-") as scratch:
        work = args.work or Path(scratch)
        result = run(
            args.model,
            args.models_dir,
            work,
            args.n_train,
            args.n_held_out,
            hyperparameters,
            args.on_policy,
            args.other_closing,
            args.supervised_only,
        )
    print(json.dumps(result), flush=True)
    return result


def _number(text: str, kind: type = float) -> Any:
    return "auto" if text == "auto" else kind(text)


def run(
    model: str,
    models_dir: Path,
    work: Path,
    n_train: int,
    n_held_out: int,
    hyperparameters: dict[str, Any],
    on_policy: bool = False,
    other_closing: str = "",
    supervised_only: bool = False,
) -> dict[str, Any]:
    import torch

    from openft.train.dpo import REFERENCE_FILE, train_dpo
    from openft.train.reporting import MemoryReporter
    from openft.train.sft import train_sft
    from openft.train.spec import find_base_model, resolve_job

    base = find_base_model(models_dir, model)
    train = make_pairs(n_train, seed=0, other_closing=other_closing)
    if on_policy:
        (answers,) = _greedy_answers([base.path()], train)
        train = _on_policy(train, answers)
    held_out = make_pairs(n_held_out, seed=1, held_out=True)
    if supervised_only:  # the same prompts, each with its preferred output as the answer
        train_file = _write_chats(work / "train.jsonl", train)
        valid_file = _write_chats(work / "held_out.jsonl", held_out)
        hyperparameters = {k: v for k, v in hyperparameters.items() if k not in ("beta", "sft_weight")}
    else:
        train_file = write_pairs(work / "train.jsonl", train)
        valid_file = write_pairs(work / "held_out.jsonl", held_out)
    method = "supervised" if supervised_only else "dpo"
    config = resolve_job(
        method,
        hyperparameters,
        base=base,
        training_file=train_file,
        validation_file=valid_file,
        output_dir=work / "run",
        seed=0,
    )
    reporter = MemoryReporter()
    started = time.perf_counter()
    trained = (train_sft if supervised_only else train_dpo)(config, reporter)
    train_s = time.perf_counter() - started
    if trained.status != "succeeded":
        raise SystemExit(f"the {method} run ended {trained.status}")
    gc.collect()

    # The base model's own preference on the held-out pairs: its log-probabilities, which the run saved.
    base_prefers = None
    if not supervised_only:
        reference = torch.load(config.layout.output_dir / REFERENCE_FILE)["valid"]
        base_prefers = float((reference[:, 0] > reference[:, 1]).float().mean())

    started = time.perf_counter()
    assert trained.final_path is not None
    base_answers, tuned_answers = _greedy_answers([base.path(), Path(trained.final_path)], held_out)
    generate_s = time.perf_counter() - started
    steps = [values for _, _, values in reporter.steps]
    first_window = next((v for v in steps if "valid_reward_accuracy" in v), {})
    epoch_ends = [v for v in steps if "full_valid_reward_accuracy" in v]
    result = {
        "model": model,
        "n_train": len(train),
        "on_policy": on_policy,
        "other_closing": other_closing,
        "n_held_out": n_held_out,
        "method": method,
        "hyperparameters": {
            "n_epochs": config.n_epochs,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "beta": config.beta,
            "sft_weight": config.sft_weight if not supervised_only else None,
            "method": config.method,
            "lora_rank": config.lora_rank,
        },
        "steps": len(steps),
        "trained_tokens": trained.trained_tokens,
        "train_seconds": round(train_s, 1),
        "base_prefers_preferred": None if base_prefers is None else round(base_prefers, 3),
        "first_valid_step": steps.index(first_window) + 1 if first_window else None,
        "first_valid_reward_accuracy": first_window.get("valid_reward_accuracy"),
        "epoch_full_valid_reward_accuracy": [round(v["full_valid_reward_accuracy"], 3) for v in epoch_ends],
        "epoch_full_valid_reward_margin": [round(v["full_valid_reward_margin"], 3) for v in epoch_ends],
        "final_full_valid_reward_accuracy": epoch_ends[-1]["full_valid_reward_accuracy"]
        if epoch_ends
        else None,
        "first_train_loss": round(steps[0]["train_loss"], 4),
        "final_train_loss": round(steps[-1]["train_loss"], 4),
        "final_train_sft_loss": round(steps[-1]["train_sft_loss"], 4)
        if "train_sft_loss" in steps[-1]
        else None,
        "base_signed_share": _share(base_answers),
        "fine_tuned_signed_share": _share(tuned_answers),
        # Replies cut at MAX_ANSWER_TOKENS cannot end with the signature.
        "base_truncated_share": _truncated(base_answers),
        "fine_tuned_truncated_share": _truncated(tuned_answers),
        "generate_seconds": round(generate_s, 1),
        "samples": [
            {"prompt": line["input"]["messages"][-1]["content"], "base": b.text, "fine_tuned": t.text}
            for line, b, t in list(zip(held_out, base_answers, tuned_answers, strict=True))[:3]
        ],
    }
    _print_summary(result)
    return result


def _greedy_answers(model_paths: list[Path], lines: list[dict[str, Any]]) -> list[list[Answer]]:
    """Greedy answers (temperature 0, as /v1/chat/completions) of each model to each line's prompt."""
    from openft.comparison.local_runner import LocalRunner, local_engine, model_ref
    from openft.comparison.testset import TestCase

    cases = [
        TestCase(
            line=i + 1,
            reference=line["preferred_output"][0]["content"],
            messages=tuple(line["input"]["messages"]),
        )
        for i, line in enumerate(lines)
    ]
    with local_engine() as engine:
        return [
            LocalRunner(model_ref(path), engine).answer(cases, max_tokens=MAX_ANSWER_TOKENS)
            for path in model_paths
        ]


def _on_policy(lines: list[dict[str, Any]], answers: list[Answer]) -> list[dict[str, Any]]:
    """The pairs rebuilt on the base model's own answers (signed or not); answers it did not finish are
    dropped."""
    return [
        {
            **line,
            "preferred_output": [{"role": "assistant", "content": f"{answer.text.strip()}\n\n{SIGNATURE}"}],
            "non_preferred_output": [{"role": "assistant", "content": answer.text.strip()}],
        }
        for line, answer in zip(lines, answers, strict=True)
        if not answer.truncated and answer.text.strip()
    ]


def _write_chats(path: Path, lines: list[dict[str, Any]]) -> Path:
    """Preference lines as chat lines: the prompt, then the preferred output as the answer."""
    chats = [{"messages": [*line["input"]["messages"], *line["preferred_output"]]} for line in lines]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(chat) + "\n" for chat in chats))
    return path


def _share(answers: list[Answer]) -> float:
    return round(sum(is_signed(a.text) for a in answers) / max(1, len(answers)), 3)


def _truncated(answers: list[Answer]) -> float:
    return round(sum(a.truncated for a in answers) / max(1, len(answers)), 3)


def _print_summary(result: dict[str, Any]) -> None:
    hp = result["hyperparameters"]
    print(
        f"{result['model']}: {result['n_train']} pairs, {result['n_held_out']} held out | "
        f"{result['method']}, {hp['method']} r{hp['lora_rank']}, {hp['n_epochs']} epochs, batch "
        f"{hp['batch_size']}, lr {hp['learning_rate']:g}, beta {hp['beta']}, sft_weight {hp['sft_weight']}, "
        f"{result['steps']} steps | train {result['train_seconds']:.0f} s "
        f"({result['trained_tokens']} tokens)",
        file=sys.stderr,
    )
    if result["method"] == "dpo":
        print(
            f"held-out reward accuracy: first window (step {result['first_valid_step']}) "
            f"{result['first_valid_reward_accuracy']}, "
            f"epoch ends {result['epoch_full_valid_reward_accuracy']} "
            f"(margins {result['epoch_full_valid_reward_margin']}); the base itself scores the preferred "
            f"output higher on {result['base_prefers_preferred']:.2f} of the pairs",
            file=sys.stderr,
        )
    print(
        f"greedy answers ending with the signature: base {result['base_signed_share']:.2f} -> "
        f"fine-tuned {result['fine_tuned_signed_share']:.2f} (cut at {MAX_ANSWER_TOKENS} tokens: base "
        f"{result['base_truncated_share']:.2f}, fine-tuned {result['fine_tuned_truncated_share']:.2f}; "
        f"{result['generate_seconds']:.0f} s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
