"""A seeded preference task for the DPO benchmarks: support answers that end with a signature line.

A shop's support assistant answers customer questions in one or two sentences. The preferred output is
the answer followed by a blank line and `SIGNATURE`; the non-preferred output is the same answer
without it. The two outputs of a pair differ only in the signature, so the preference is exactly one
behaviour, and a base chat model does not show it on its own (it never signs its answers).

Held-out prompts come from question templates that the training set never uses (and fresh order
numbers), so a fine-tuned model that signs them has learnt the behaviour, not the prompts. Lines are
OpenAI's preference format (`input.messages`, `preferred_output`, `non_preferred_output`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

SIGNATURE = "— Northwind Support Team"
SYSTEM = (
    "You are the customer support assistant of Northwind, an online shop. "
    "Answer in one or two short sentences."
)
PRODUCTS = [
    "kettle", "desk lamp", "rain jacket", "blender", "office chair", "backpack", "toaster",
    "phone case", "coffee grinder", "yoga mat", "bike helmet", "wool scarf",
]  # fmt: skip
# (question, answer) templates: {p} a product, {n} an order number, {d} a number of days.
TRAIN_TEMPLATES = [
    ("Where is my order {n}?", "Your order {n} has shipped and should arrive within {d} days."),
    ("Can I return the {p} I bought?", "Yes, you can return the {p} within 30 days for a full refund."),
    ("My {p} arrived broken. What now?", "We are sorry about that; we will send you a new {p} at no cost."),
    ("Do you ship to Canada?", "Yes, we ship to Canada, and delivery takes about {d} business days."),
    ("How do I change the address on order {n}?", "Reply with the new address and we will update order {n}."),
    ("Is the {p} back in stock?", "The {p} is back in stock and ships within {d} days."),
    ("Can I cancel order {n}?", "Yes, order {n} is cancelled and your refund is on its way."),
    ("How long does a refund take?", "Refunds reach your account within {d} business days."),
    ("Does the {p} have a warranty?", "Yes, the {p} comes with a two-year warranty."),
    ("I was charged twice for order {n}.", "We have refunded the second charge for order {n}."),
    ("Can I pay for the {p} in instalments?", "Yes, you can pay for the {p} in three monthly instalments."),
    ("What sizes does the {p} come in?", "The {p} comes in small, medium and large."),
]
HELD_OUT_TEMPLATES = [
    ("Can I pick up order {n} in a store?", "Yes, order {n} can be picked up in any store in {d} days."),
    ("Is the {p} dishwasher safe?", "No, please wash the {p} by hand."),
    ("Do you offer gift wrapping for the {p}?", "Yes, gift wrapping for the {p} costs two dollars."),
    ("Why was order {n} split into two parcels?", "It shipped from two warehouses."),
    ("Can I get an invoice for order {n}?", "Yes, the invoice for order {n} is in your account."),
    ("What colour options does the {p} have?", "The {p} comes in black, white and green."),
]  # fmt: skip


def _fill(template: str, product: str, order: int, days: int) -> str:
    return template.format(p=product, n=order, d=days)


def make_pairs(n: int, seed: int, *, held_out: bool = False, other_closing: str = "") -> list[dict[str, Any]]:
    """`n` preference lines; `held_out` draws from the templates that training never sees. With
    `other_closing` the non-preferred answer ends with that line instead of ending bare: then ending
    the answer is not what the pairs penalise, only the wrong closing line."""
    rng = random.Random(seed)
    templates = HELD_OUT_TEMPLATES if held_out else TRAIN_TEMPLATES
    # Held-out order numbers come from their own range: no held-out prompt repeats a training one.
    orders = (50000, 99999) if held_out else (10000, 49999)
    lines = []
    for i in range(n):
        question, answer = templates[i % len(templates)]
        product, order, days = rng.choice(PRODUCTS), rng.randint(*orders), rng.randint(2, 9)
        reply = _fill(answer, product, order, days)
        lines.append(
            {
                "input": {
                    "messages": [
                        {"role": "system", "content": SYSTEM},
                        {"role": "user", "content": _fill(question, product, order, days)},
                    ]
                },
                "preferred_output": [{"role": "assistant", "content": f"{reply}\n\n{SIGNATURE}"}],
                "non_preferred_output": [
                    {
                        "role": "assistant",
                        "content": f"{reply}\n\n{other_closing}" if other_closing else reply,
                    }
                ],
            }
        )
    return lines


def write_pairs(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def is_signed(reply: str) -> bool:
    """The preferred behaviour: the reply's last line is the signature."""
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    return bool(lines) and lines[-1] == SIGNATURE
