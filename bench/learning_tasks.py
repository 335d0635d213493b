"""Small, seeded chat tasks that show whether fine-tuning taught a pretrained model something.

Three tasks, each short (a few dozen tokens an example, so a 2-core CPU trains them in minutes):

- `routing`: a support ticket goes to one of five teams; the system message lists them and asks for
  the team name only. Scored by exact match.
- `extraction`: pull the order number and the product out of a customer message as one-line JSON.
  Scored by exact match of the parsed object.
- `marv`: the fine-tuning guide's Marv, a factual chatbot that is also sarcastic. Scored as correct
  when the reply holds the right fact and one of the sarcastic remarks the training set taught.

Held-out prompts never occur in the training set. Same seed, same examples.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Example = dict[str, Any]

TEAMS = {
    "billing": [
        "I was charged twice for order {n}.",
        "My invoice {n} shows the wrong amount.",
        "Why did my card get billed {d} dollars?",
        "Please refund the extra {d} dollar charge.",
        "The payment for order {n} failed but money left my account.",
        "Can I get a copy of invoice {n}?",
    ],
    "shipping": [
        "Order {n} has not arrived yet.",
        "Where is my package? It is order {n}.",
        "The courier lost my parcel {n}.",
        "Tracking for order {n} has not moved in {d} days.",
        "Can you ship order {n} to a new address?",
        "My delivery is {d} days late.",
    ],
    "technical": [
        "The app crashes when I open settings.",
        "I get error {n} when I log in to the app.",
        "The website shows a blank page after checkout.",
        "Sync stopped working {d} days ago.",
        "The app freezes on the loading screen.",
        "Error code {n} appears when I upload a photo.",
    ],
    "account": [
        "I forgot my password.",
        "Please change the email on my account.",
        "How do I delete my account?",
        "I cannot verify my phone number.",
        "Someone else logged in to my account.",
        "Please update my username to {w}.",
    ],
    "returns": [
        "I want to return order {n}.",
        "The {w} I got is broken, can I send it back?",
        "How do I return a {w} that does not fit?",
        "I need a return label for order {n}.",
        "Can I exchange the {w} from order {n}?",
        "The {w} arrived damaged, I want to return it.",
    ],
}
ROUTING_SYSTEM = (
    "Route the support ticket to one team: billing, shipping, technical, account or returns. "
    "Answer with the team name only."
)
PRODUCTS = ["kettle", "lamp", "jacket", "blender", "desk chair", "backpack", "toaster", "phone case"]
COLOURS = ["red", "blue", "black", "green", "white", "grey"]
GREETINGS = ["", "", "Hi. ", "Hello, ", "Good morning. ", "Hey there. "]

EXTRACTION_SYSTEM = (
    'Extract the order number and the product from the message as JSON: {"order": "...", "product": "..."}'
)
EXTRACTION_TEMPLATES = [
    "My order {n} for a {p} never arrived.",
    "The {p} in order {n} is broken.",
    "I want to return the {p} from order {n}.",
    "Order {n}: the {p} came in the wrong size.",
    "Can you check on the {p}? It is order {n}.",
    "I was charged twice for the {p}, order {n}.",
]

MARV_SYSTEM = "Marv is a factual chatbot that is also sarcastic."
MARV_FACTS = {
    "What is the capital of France?": "Paris",
    "What is the capital of Japan?": "Tokyo",
    "What is the capital of Italy?": "Rome",
    "What is the capital of Germany?": "Berlin",
    "What is the capital of Spain?": "Madrid",
    "What is the capital of England?": "London",
    "What is the capital of Russia?": "Moscow",
    "What is the capital of China?": "Beijing",
    "What is the capital of Egypt?": "Cairo",
    "What is the capital of Greece?": "Athens",
    "How many days are in a week?": "seven",
    "How many legs does a spider have?": "eight",
    "How many legs does a dog have?": "four",
    "How many hours are in a day?": "24",
    "What color is the sky on a clear day?": "blue",
    "What color is grass?": "green",
    "What do bees make?": "honey",
    "What is frozen water called?": "ice",
    "Which planet do we live on?": "Earth",
    "What is the opposite of hot?": "cold",
    "What is the opposite of up?": "down",
    "Who wrote Romeo and Juliet?": "Shakespeare",
    "What animal says moo?": "cow",
    "What is the largest ocean?": "Pacific",
}
# The held-out questions: facts the training set never asks about.
MARV_HELD_OUT = {
    "What is the capital of Germany?",
    "What is the capital of Spain?",
    "What is the capital of China?",
    "How many legs does a dog have?",
    "What color is grass?",
    "What is frozen water called?",
    "What is the opposite of up?",
    "What animal says moo?",
}
MARV_REMARKS = [
    "as if everyone didn't know that already",
    "in case you forgot",
    "try to keep up",
    "shocking, I know",
    "what a challenging question",
    "you're welcome, genius",
]
MARV_PHRASINGS = [
    "{Fact}, {remark}.",
    "{Fact}. {Remark}.",
    "It's {fact}, {remark}.",
]


@dataclass(frozen=True)
class Task:
    name: str
    make: Callable[[int, int, int], tuple[list[Example], list[Example]]]  # (n_train, n_held_out, seed)
    score: Callable[[Example, str], bool]  # (held-out example, reply) -> correct?
    max_tokens: int


def routing_split(n_train: int, n_held_out: int, seed: int = 0) -> tuple[list[Example], list[Example]]:
    def draw(rng: random.Random) -> Example:
        team = rng.choice(sorted(TEAMS))
        ticket = rng.choice(TEAMS[team]).format(
            n=rng.randrange(1000, 99999), d=rng.randrange(2, 60), w=rng.choice(PRODUCTS)
        )
        return _chat(ROUTING_SYSTEM, rng.choice(GREETINGS) + ticket, team)

    return _split(draw, n_train, n_held_out, seed)


def extraction_split(n_train: int, n_held_out: int, seed: int = 0) -> tuple[list[Example], list[Example]]:
    def draw(rng: random.Random) -> Example:
        order, product = str(rng.randrange(1000, 99999)), f"{rng.choice(COLOURS)} {rng.choice(PRODUCTS)}"
        text = rng.choice(EXTRACTION_TEMPLATES).format(n=order, p=product)
        answer = _json({"order": order, "product": product})
        return _chat(EXTRACTION_SYSTEM, rng.choice(GREETINGS) + text, answer)

    return _split(draw, n_train, n_held_out, seed)


def marv_split(n_train: int, n_held_out: int, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """Training examples ask only the facts outside MARV_HELD_OUT; held-out ones only those inside."""
    rng = random.Random(seed)
    seen = sorted(set(MARV_FACTS) - MARV_HELD_OUT)
    unseen = sorted(MARV_HELD_OUT)
    train = [_marv_example(rng, seen[i % len(seen)]) for i in range(n_train)]
    held_out = [_marv_example(rng, unseen[i % len(unseen)]) for i in range(n_held_out)]
    return train, held_out


def score_exact(example: Example, reply: str) -> bool:
    return reply.strip() == example["messages"][-1]["content"].strip()


def score_json(example: Example, reply: str) -> bool:
    try:
        return bool(json.loads(reply) == json.loads(example["messages"][-1]["content"]))
    except json.JSONDecodeError:
        return False


def score_marv(example: Example, reply: str) -> bool:
    """The right fact and a sarcastic remark of the kind the training set taught."""
    fact = MARV_FACTS[example["messages"][1]["content"]]
    lowered = reply.lower()
    return fact.lower() in lowered and any(remark.lower() in lowered for remark in MARV_REMARKS)


TASKS = {
    task.name: task
    for task in (
        Task("routing", routing_split, score_exact, max_tokens=8),
        Task("extraction", extraction_split, score_json, max_tokens=32),
        Task("marv", marv_split, score_marv, max_tokens=40),
    )
}


def _marv_example(rng: random.Random, question: str) -> Example:
    remark = rng.choice(MARV_REMARKS)
    fact = MARV_FACTS[question]
    answer = rng.choice(MARV_PHRASINGS).format(
        fact=fact, Fact=fact[0].upper() + fact[1:], remark=remark, Remark=remark[0].upper() + remark[1:]
    )
    return _chat(MARV_SYSTEM, question, answer)


def _chat(system: str, user: str, answer: str) -> Example:
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }


def _json(value: dict[str, str]) -> str:
    return json.dumps(value, separators=(", ", ": "))


def _split(
    draw: Callable[[random.Random], Example], n_train: int, n_held_out: int, seed: int
) -> tuple[list[Example], list[Example]]:
    rng = random.Random(seed)
    train = [draw(rng) for _ in range(n_train)]
    seen = {example["messages"][1]["content"] for example in train}
    held_out: list[Example] = []
    for _ in range(1000 * (n_held_out + 1)):
        if len(held_out) == n_held_out:
            break
        example = draw(rng)
        if example["messages"][1]["content"] not in seen:
            seen.add(example["messages"][1]["content"])
            held_out.append(example)
    if len(held_out) < n_held_out:
        raise ValueError(f"could not find {n_held_out} prompts unseen in {n_train} training examples")
    return train, held_out
