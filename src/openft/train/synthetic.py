"""A small, learnable chat task in OpenAI's JSONL format: for tests, demos and the quickstart.

Each example asks one short question (a country's capital, a word's opposite, the next weekday) in one
of several phrasings, sometimes after a greeting or under a system prompt. The answer depends only on
the question's subject, which always ends the question: a 2-layer model trained for a minute on a CPU
finds it and answers prompts it never saw, while a random model gets none right. Everything is drawn
from a seeded random generator: same seed, same examples.

    from openft.train.synthetic import make_split, write_jsonl
    train, held_out = make_split(n_train=400, n_held_out=50, seed=0)
    write_jsonl(Path("train.jsonl"), train)
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Peru": "Lima",
    "Kenya": "Nairobi",
    "Norway": "Oslo",
    "Egypt": "Cairo",
    "Chile": "Santiago",
    "Italy": "Rome",
    "Canada": "Ottawa",
    "Poland": "Warsaw",
}
OPPOSITES = {
    "hot": "cold",
    "up": "down",
    "early": "late",
    "open": "closed",
    "light": "dark",
    "fast": "slow",
    "full": "empty",
    "happy": "sad",
}
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
TEMPLATES = {
    "capital": [
        "What is the capital of {}?",
        "Name the capital city of {}.",
        "Which city is the capital of {}?",
        "Capital of {}?",
    ],
    "opposite": [
        "What is the opposite of {}?",
        "Give me the antonym of {}.",
        "Which word means the reverse of {}?",
        "Opposite of {}?",
    ],
    "weekday": [
        "Which day comes after {}?",
        "What is the day after {}?",
        "Tomorrow, if today is {}?",
        "The day following {}?",
    ],
}
NAMES = ["Ada", "Brook", "Cyrus", "Dana", "Elif", "Farah", "Goran", "Hana", "Ivo", "Juno", "Kai", "Lena"]
OPENERS = ["", "", "Hi! ", "Hello, I'm {name}. ", "Quick question. ", "{name} here. "]
SYSTEM_PROMPTS = ["", "", "You answer with one word.", "You are a concise assistant."]


def make_example(rng: random.Random) -> dict[str, Any]:
    """One chat example: an optional system prompt, a question, a one-word answer."""
    kind = rng.choice(sorted(TEMPLATES))
    subject, answer = _draw_subject(kind, rng)
    name = rng.choice(NAMES)
    question = rng.choice(TEMPLATES[kind]).format(subject)
    user = rng.choice(OPENERS).format(name=name) + question
    messages = []
    system = rng.choice(SYSTEM_PROMPTS)
    if system:
        messages.append({"role": "system", "content": system})
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return {"messages": messages}


def make_split(
    n_train: int, n_held_out: int, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Training examples and held-out examples whose prompts never occur in the training set."""
    rng = random.Random(seed)
    train = [make_example(rng) for _ in range(n_train)]
    seen = {prompt_key(example) for example in train}
    held_out: list[dict[str, Any]] = []
    for _ in range(1000 * (n_held_out + 1)):
        if len(held_out) == n_held_out:
            break
        example = make_example(rng)
        key = prompt_key(example)
        if key not in seen:
            seen.add(key)
            held_out.append(example)
    if len(held_out) < n_held_out:
        raise ValueError(f"could not find {n_held_out} prompts unseen in {n_train} training examples")
    return train, held_out


def prompt_key(example: dict[str, Any]) -> str:
    """The conversation without its final answer, as one string (to tell prompts apart)."""
    return json.dumps(example["messages"][:-1], sort_keys=True)


def write_jsonl(path: Path, examples: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(example) + "\n" for example in examples))
    return path


def _draw_subject(kind: str, rng: random.Random) -> tuple[str, str]:
    if kind == "capital":
        country = rng.choice(sorted(CAPITALS))
        return country, CAPITALS[country]
    if kind == "opposite":
        word = rng.choice(sorted(OPPOSITES))
        return word, OPPOSITES[word]
    i = rng.randrange(len(WEEKDAYS))
    return WEEKDAYS[i], WEEKDAYS[(i + 1) % len(WEEKDAYS)]
