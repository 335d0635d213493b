"""Benchmark: openft's data checker against a line-by-line port of the cookbook's checker.

Generates a chat-format training file (100k examples by default), then runs, each in a fresh process
so that peak memory is its own:

- `openft`: `openft.data.check_file` with the built-in model's tokenizer (errors, exact token counts
  and loss masks through the chat template, statistics, epochs, and the data-quality lint);
- `cookbook`: the algorithm of OpenAI's `Chat_finetuning_data_prep.ipynb`, written plainly: one
  `json.loads` and one `tokenizer.encode` per message field, with the same tokenizer.

It prints examples/s and peak RSS for each, their ratio, and the counts both agree on.

    .venv/bin/python bench/data_check.py [--examples 100000] [--model openft-tiny] [--sides cookbook,openft]

`--examples 2500000 --sides openft` checks a 1 GB file: the peak RSS against a small file's shows how
flat the checker's memory stays.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

SYSTEM_PROMPTS = [
    "Marv is a factual chatbot that is also sarcastic.",
    "You are a helpful assistant that answers in one or two sentences.",
]
VOCABULARY = (
    "the capital of france paris river wrote romeo juliet shakespeare far moon earth distance kilometres "
    "weather today tomorrow rain sun cold warm city country population language speak learn why how what "
    "when where who which book author year war history science planet star light speed water"
)
WORDS = VOCABULARY.split()


def write_examples(path: Path, n_examples: int, seed: int = 0) -> None:
    """Marv-style conversations: a system prompt, a question, a short answer (some multi-turn)."""
    rng = random.Random(seed)
    with path.open("w") as stream:
        for _ in range(n_examples):
            messages = [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}]
            for _turn in range(1 if rng.random() < 0.8 else 2):
                question = " ".join(rng.choices(WORDS, k=rng.randint(5, 14))).capitalize() + "?"
                answer = " ".join(rng.choices(WORDS, k=rng.randint(6, 30))).capitalize() + "."
                messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            stream.write(json.dumps({"messages": messages}) + "\n")


def load_tokenizer(model: str) -> Any:
    from openft.cli.data import load_tokenizer as load
    from openft.settings import Settings

    return load(model, Settings().models_dir)


def run_openft(path: Path, model: str) -> dict[str, Any]:
    from openft.data import check_file

    tokenizer = load_tokenizer(model)
    start = time.perf_counter()
    report = check_file(path, tokenizer=tokenizer)
    elapsed_s = time.perf_counter() - start
    training = report.training
    return {
        "elapsed_s": elapsed_s,
        "n_examples": training.n_examples,
        "n_errors": training.n_errors,
        "n_missing_system": training.n_missing_system,
        "n_missing_user": training.n_missing_user,
        "n_tokens": training.tokens.n_tokens if training.tokens else 0,
        "n_epochs": report.estimate.n_epochs if report.estimate else 0,
    }


def run_cookbook(path: Path, model: str) -> dict[str, Any]:
    tokenizer = load_tokenizer(model)
    start = time.perf_counter()
    counts = cookbook_check(path, tokenizer)
    counts["elapsed_s"] = time.perf_counter() - start
    return counts


def cookbook_check(path: Path, tokenizer: Any) -> dict[str, Any]:
    """The notebook's checks and statistics, line by line, as a user would write them."""
    import numpy as np

    def encode(value: Any) -> list[int]:
        return list(
            tokenizer.encode(value if isinstance(value, str) else json.dumps(value), add_special_tokens=False)
        )

    format_errors: dict[str, int] = defaultdict(int)
    n_missing_system = n_missing_user = n_examples = 0
    n_messages, convo_lens, assistant_lens = [], [], []
    with path.open() as stream:
        for line in stream:
            ex = json.loads(line)
            n_examples += 1
            if not isinstance(ex, dict):
                format_errors["data_type"] += 1
                continue
            messages = ex.get("messages", None)
            if not messages:
                format_errors["missing_messages_list"] += 1
                continue
            for message in messages:
                if "role" not in message or "content" not in message:
                    format_errors["message_missing_key"] += 1
                if any(k not in ("role", "content", "name", "function_call", "weight") for k in message):
                    format_errors["message_unrecognized_key"] += 1
                if message.get("role", None) not in ("system", "user", "assistant", "function"):
                    format_errors["unrecognized_role"] += 1
                content = message.get("content", None)
                function_call = message.get("function_call", None)
                if (not content and not function_call) or not isinstance(content, str):
                    format_errors["missing_content"] += 1
            if not any(message.get("role", None) == "assistant" for message in messages):
                format_errors["example_missing_assistant_message"] += 1
            n_missing_system += not any(m["role"] == "system" for m in messages)
            n_missing_user += not any(m["role"] == "user" for m in messages)
            n_messages.append(len(messages))
            n_tokens = 3
            for message in messages:
                n_tokens += 3
                for key, value in message.items():
                    n_tokens += len(encode(value)) + (1 if key == "name" else 0)
            convo_lens.append(n_tokens)
            assistant_lens.append(
                sum(len(encode(m["content"])) for m in messages if m["role"] == "assistant")
            )
    for values in (n_messages, convo_lens, assistant_lens):
        np.quantile(values, [0.1, 0.5, 0.9])
    n_epochs = 3
    if n_examples * 3 < 100:
        n_epochs = min(25, 100 // n_examples)
    elif n_examples * 3 > 25000:
        n_epochs = max(1, 25000 // n_examples)
    return {
        "n_examples": n_examples,
        "n_errors": sum(format_errors.values()),
        "n_missing_system": n_missing_system,
        "n_missing_user": n_missing_user,
        "n_tokens": sum(convo_lens),
        "n_epochs": n_epochs,
    }


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _in_child(name: str, path: str, model: str, queue: Any) -> None:
    runner = run_openft if name == "openft" else run_cookbook
    load_tokenizer(model)  # imports and tokenizer loading stay out of the CPU time
    cpu_before = _cpu_s()
    result = runner(Path(path), model)
    result["cpu_s"] = _cpu_s() - cpu_before
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def measure(name: str, path: Path, model: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_in_child, args=(name, str(path), model, queue))
    process.start()
    result: dict[str, Any] = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--model", default="openft-tiny")
    parser.add_argument(
        "--sides",
        default="cookbook,openft",
        help="comma-separated: cookbook, openft (openft alone: memory on a large file)",
    )
    args = parser.parse_args()
    sides = args.sides.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.jsonl"
        write_examples(path, args.examples)
        size_mb = path.stat().st_size / 1e6
        print(f"{args.examples} chat examples, {size_mb:.1f} MB, tokenizer of {args.model}")
        load_tokenizer(args.model)  # build the model once, outside the timings
        results = {name: measure(name, path, args.model) for name in sides}
    for name, result in results.items():
        rate = result["n_examples"] / result["elapsed_s"]
        print(
            f"{name:>9}: {rate:9.0f} examples/s  {result['elapsed_s']:6.2f} s wall  "
            f"{result['cpu_s']:6.2f} s CPU  peak RSS {result['peak_rss_mb']:6.0f} MB"
            f"  examples={result['n_examples']} errors={result['n_errors']} "
            f"missing_system={result['n_missing_system']} missing_user={result['n_missing_user']} "
            f"epochs={result['n_epochs']} tokens={result['n_tokens']}"
        )
    if set(results) != {"cookbook", "openft"}:
        return
    speedup = results["cookbook"]["elapsed_s"] / results["openft"]["elapsed_s"]
    cpu_ratio = results["cookbook"]["cpu_s"] / results["openft"]["cpu_s"]
    same = all(
        results["openft"][key] == results["cookbook"][key]
        for key in ("n_examples", "n_errors", "n_missing_system", "n_missing_user", "n_epochs")
    )
    print(
        f"openft is {speedup:.2f}x the cookbook's speed (wall clock; {cpu_ratio:.2f}x in CPU time, which "
        f"other load on the machine disturbs less); counts {'agree' if same else 'DIFFER'}"
    )
    print("(token totals differ by design: the cookbook approximates, openft renders the chat template)")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
