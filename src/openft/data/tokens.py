"""Token counts of examples: the exact token stream training sees, and the tokens that carry loss.

Chat examples are rendered by `render_chat` (through `BatchRenderer`, which gives the same result
faster). A preference example is two conversations, its prompt followed by each answer; both are
counted. A reinforcement prompt is its messages (a final assistant message dropped) and the
assistant's generation header, as the recipe samples after it; none of it carries loss, and a prompt
longer than the context is cut from the start (the recipe keeps its end). A prompt/completion
example is the prompt's tokens, the completion's and the end-of-text token, with loss on the
completion and end-of-text. Sequences longer than the context are truncated from the end, as
OpenAI does, so they count at most `context_length` tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openft.data.fast_render import BatchRenderer, Conversation, Counts
from openft.data.formats import FileFormat
from openft.data.render import RenderedChat, Tokenizer, render_prompt
from openft.data.validate_other import preference_outputs
from openft.data.validate_prompt import prompt_messages


@dataclass(frozen=True)
class ExampleTokens:
    n_tokens: int  # every sequence of the example, before truncation
    n_capped_tokens: int  # after truncating each sequence to the context
    n_trained_tokens: int  # tokens that carry loss, after truncation
    over_context: bool


def chat_conversation(example: Mapping[str, Any]) -> Conversation:
    """The messages and tools of a chat example; legacy `functions` become function tools."""
    tools = example.get("tools")
    if not tools and example.get("functions"):
        tools = [{"type": "function", "function": function} for function in example["functions"]]
    return example["messages"], tools or None


def preference_conversations(example: Mapping[str, Any]) -> tuple[Conversation, Conversation]:
    """The prompt followed by the preferred answer, and by the non-preferred one."""
    prompt = example["input"]
    messages, tools = chat_conversation(prompt)
    preferred, rejected = preference_outputs(dict(example))
    return ([*messages, preferred[0]], tools), ([*messages, rejected[0]], tools)


class TokenCounter:
    """Counts tokens for batches of valid examples of one format."""

    def __init__(self, tokenizer: Tokenizer, context_length: int) -> None:
        if context_length < 1:
            raise ValueError(f"context_length must be at least 1, got {context_length}")
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.renderer = BatchRenderer(tokenizer)
        eos = getattr(tokenizer, "eos_token_id", None)
        self._eos_ids = [eos] if isinstance(eos, int) else []

    def count(
        self, file_format: FileFormat, examples: Sequence[Mapping[str, Any]]
    ) -> list[ExampleTokens | ValueError]:
        """Token counts of each example, or the error that makes the example unrenderable."""
        limit = self.context_length
        if file_format == "prompt_completion":
            return [self._totals([counts]) for counts in self._count_prompt_completions(examples)]
        if file_format == "prompt":
            return [self._prompt_tokens(example) for example in examples]
        if file_format == "preference":
            pairs = [preference_conversations(example) for example in examples]
            flat = self.renderer.count([conversation for pair in pairs for conversation in pair], limit)
            return [self._totals(flat[index : index + 2]) for index in range(0, len(flat), 2)]
        conversations = [chat_conversation(example) for example in examples]
        return [self._totals([counts]) for counts in self.renderer.count(conversations, limit)]

    def render(self, file_format: FileFormat, example: Mapping[str, Any]) -> RenderedChat | ValueError:
        """The first token sequence of an example, as training sees it (for a mask preview)."""
        if file_format == "prompt_completion":
            prompt_ids, completion_ids = self.renderer.encode([example["prompt"], example["completion"]])
            answer = completion_ids + self._eos_ids
            return RenderedChat(prompt_ids + answer, [0] * len(prompt_ids) + [1] * len(answer))
        conversation = (
            preference_conversations(example)[0]
            if file_format == "preference"
            else chat_conversation(example)
        )
        return self.renderer.render([conversation])[0]

    def _prompt_tokens(self, example: Mapping[str, Any]) -> ExampleTokens | ValueError:
        messages, tools = chat_conversation(example)
        try:
            n_tokens = len(render_prompt(self.tokenizer, prompt_messages(messages), tools))
        except (ValueError, TypeError, KeyError) as exc:  # what the recipe's load_prompts refuses
            return ValueError(str(exc))
        n_capped = min(n_tokens, self.context_length)
        return ExampleTokens(n_tokens, n_capped, 0, n_tokens > n_capped)

    def _totals(self, sequences: Sequence[Counts | ValueError]) -> ExampleTokens | ValueError:
        n_tokens = n_capped = n_trained = 0
        for counts in sequences:
            if isinstance(counts, ValueError):
                return counts
            n_tokens += counts[0]
            n_capped += min(self.context_length, counts[0])
            n_trained += counts[1]
        return ExampleTokens(n_tokens, n_capped, n_trained, n_tokens > n_capped)

    def _count_prompt_completions(self, examples: Sequence[Mapping[str, Any]]) -> list[Counts]:
        texts = [text for example in examples for text in (example["prompt"], example["completion"])]
        lengths = self.renderer.count_texts(texts)
        counts = []
        for n_prompt, n_completion in zip(lengths[::2], lengths[1::2], strict=True):
            n_tokens = n_prompt + n_completion + len(self._eos_ids)
            counts.append((n_tokens, max(0, min(n_tokens, self.context_length) - n_prompt)))
        return counts
