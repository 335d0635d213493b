"""Conversation -> tokens: the one function that both training and inference use.

The chat template is rendered one message at a time and each new piece of text is tokenized on its
own, so every token belongs to exactly one message (and an assistant's role header is apart from its
content). The prompt a model sees at inference, `render_prompt(messages[:-1])`, is then token for token
the prefix it was trained on before the last answer. The one requirement is that the template renders
a conversation incrementally: the text of messages[:i+1] starts with the text of messages[:i].

Only the tokenizer object passed in is used; this module imports nothing else from openft.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# A transformers tokenizer that has a chat template (typed loosely: HF types are not checked here).
Tokenizer = Any
Message = Mapping[str, Any]

# Tokens that close a turn, in the order they are looked for; the tokenizer's eos is the fallback.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")


@dataclass(frozen=True)
class RenderedChat:
    input_ids: list[int]
    # 1 where the token carries loss (an assistant's content and end-of-turn token), else 0.
    loss_mask: list[int]

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def n_loss_tokens(self) -> int:
        return sum(self.loss_mask)


def render_chat(
    tokenizer: Tokenizer,
    messages: Sequence[Message],
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = False,
) -> RenderedChat:
    """Tokens and loss mask of a conversation. Assistant messages with `weight: 0` carry no loss."""
    if not messages:
        raise ValueError("messages is empty: a conversation needs at least one message")
    # The text of each growing prefix of the conversation, and whether what it adds is a trained answer.
    prefixes: list[tuple[str, bool]] = []
    for i, message in enumerate(messages):
        if message.get("role") == "assistant":
            if i == 0:
                raise ValueError(
                    "the first message is from the assistant: put a system or user message first"
                )
            # The assistant's role header is a piece of its own: it is prompt, not answer.
            prefixes.append((_render(tokenizer, messages[:i], tools, add_generation_prompt=True), False))
        with_message = _render(tokenizer, messages[: i + 1], tools, add_generation_prompt=False)
        prefixes.append((with_message, _carries_loss(message)))
    if add_generation_prompt:
        prefixes.append((_render(tokenizer, messages, tools, add_generation_prompt=True), False))

    end_id = _find_end_of_turn_id(tokenizer)
    input_ids: list[int] = []
    loss_mask: list[int] = []
    before = ""
    for text, is_answer in prefixes:
        piece_ids = _encode(tokenizer, _new_text(text, before))
        input_ids += piece_ids
        loss_mask += _answer_mask(piece_ids, end_id) if is_answer else [0] * len(piece_ids)
        before = text
    return RenderedChat(input_ids=input_ids, loss_mask=loss_mask)


def render_prompt(
    tokenizer: Tokenizer,
    messages: Sequence[Message],
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> list[int]:
    """The tokens to generate the next assistant message from (ends with the assistant's role header)."""
    return render_chat(tokenizer, messages, tools, add_generation_prompt=True).input_ids


def truncate(rendered: RenderedChat, max_length: int) -> RenderedChat:
    """Keep the first `max_length` tokens: like OpenAI, over-long examples lose tokens from the end."""
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    return RenderedChat(input_ids=rendered.input_ids[:max_length], loss_mask=rendered.loss_mask[:max_length])


def end_of_turn_id(tokenizer: Tokenizer) -> int:
    """The token that ends an assistant turn (`<|im_end|>` for the built-in models): stop generating on it."""
    token_id = _find_end_of_turn_id(tokenizer)
    if token_id is None:
        raise ValueError("the tokenizer has no end-of-turn token and no eos token: generation could not stop")
    return token_id


def stop_token_ids(tokenizer: Tokenizer) -> list[int]:
    """Every token that should end generation: the end-of-turn token and, if different, eos."""
    ids = [end_of_turn_id(tokenizer)]
    eos = tokenizer.eos_token_id
    if isinstance(eos, int) and eos not in ids:
        ids.append(eos)
    return ids


def _render(
    tokenizer: Tokenizer,
    messages: Sequence[Message],
    tools: Sequence[Mapping[str, Any]] | None,
    *,
    add_generation_prompt: bool,
) -> str:
    text = tokenizer.apply_chat_template(
        [dict(message) for message in messages],
        tools=list(tools) if tools else None,
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
    )
    if not isinstance(text, str):
        raise TypeError(f"apply_chat_template returned {type(text).__name__}, expected text")
    return text


def _new_text(rendered: str, before: str) -> str:
    if not rendered.startswith(before):
        raise ValueError(
            "the chat template does not render this conversation incrementally (the text of the first "
            "messages changes when a message is added), so tokens cannot be assigned to messages"
        )
    return rendered[len(before) :]


def _encode(tokenizer: Tokenizer, text: str) -> list[int]:
    # The template writes the special tokens itself (bos included, where a model has one).
    return list(tokenizer.encode(text, add_special_tokens=False)) if text else []


def _carries_loss(message: Message) -> bool:
    return message.get("role") == "assistant" and message.get("weight", 1) != 0


def _answer_mask(answer_ids: list[int], end_id: int | None) -> list[int]:
    """Loss on the answer up to and including its last end-of-turn token; what the template writes after
    it (a newline) belongs to the layout, and the model never generates it."""
    if end_id is None or end_id not in answer_ids:
        return [1] * len(answer_ids)
    last = len(answer_ids) - 1 - answer_ids[::-1].index(end_id)
    return [1] * (last + 1) + [0] * (len(answer_ids) - last - 1)


def _find_end_of_turn_id(tokenizer: Tokenizer) -> int | None:
    for token in END_OF_TURN_TOKENS:
        token_id = tokenizer.convert_tokens_to_ids(token)
        # Unknown tokens come back as None or as the unk id; only an exact round trip counts.
        if isinstance(token_id, int) and tokenizer.convert_ids_to_tokens(token_id) == token:
            return token_id
    eos = tokenizer.eos_token_id
    return eos if isinstance(eos, int) else None
