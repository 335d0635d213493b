"""The SDK runner: answers from a running openft (or any OpenAI-compatible) server via the openai SDK.

Chat cases go to `chat.completions`, prompt/completion cases to `completions`, at temperature 0. The
server renders the prompt with the same chat template training used. The API returns no loss for a
given answer, so `reference_loss` is always None: use the local runner for loss and perplexity.
Requests run a few at a time, so that the server can batch them.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

from openft.comparison.runners import Answer, default_max_tokens
from openft.comparison.testset import TestCase

if TYPE_CHECKING:
    from openai import OpenAI

PARALLEL_REQUESTS = 8


class SdkRunner:
    def __init__(self, client: OpenAI, model: str, *, label: str | None = None) -> None:
        self.client = client
        self.model = model
        self.label = label or model

    def answer(self, cases: Sequence[TestCase], *, max_tokens: int | None = None) -> list[Answer]:
        with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
            return list(pool.map(lambda case: self._answer_one(case, max_tokens), cases))

    def close(self) -> None:
        """The client belongs to the caller, who closes it."""

    def _answer_one(self, case: TestCase, max_tokens: int | None) -> Answer:
        # Without the model's tokenizer, the reference's UTF-8 bytes bound its token count from above.
        budget = max_tokens or default_max_tokens(len(case.reference.encode()))
        if case.prompt_text is not None:
            completion = self.client.completions.create(
                model=self.model, prompt=case.prompt_text, temperature=0, max_tokens=budget
            )
            choice = completion.choices[0]
            return Answer(choice.text, None, choice.finish_reason == "length")
        extra: dict[str, Any] = {"tools": [dict(tool) for tool in case.tools]} if case.tools else {}
        chat = self.client.chat.completions.create(
            model=self.model,
            messages=cast(Any, [dict(message) for message in case.messages]),
            temperature=0,
            max_tokens=budget,
            **extra,
        )
        message = chat.choices[0]
        return Answer(message.message.content or "", None, message.finish_reason == "length")
