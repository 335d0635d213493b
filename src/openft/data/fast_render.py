"""Count (or render) many conversations exactly as `render_chat` would, at a fraction of the cost.

`render_chat` renders the chat template once per message prefix and tokenizes each new piece of text
on its own: exact, but a few template renders and tokenizer calls per example. Here each conversation
*shape* (see `chat_shapes`: everything but the texts) is rendered once, with placeholders for the
texts; the pieces of every later conversation of that shape are the skeleton's pieces with its texts
put back. All new pieces of a batch go through the fast tokenizer in one call, only their token
counts are kept, and pieces seen before (role headers, a shared system prompt) come from a cache.

Exactness is checked, not assumed: a template that edits contents (trims them, drops reasoning) is
caught by a probe when the renderer is built, and then every conversation goes through `render_chat`;
the first conversation of each new shape is also rendered both ways, and a shape whose results differ
is rendered by `render_chat` from then on.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from openft.data.chat_shapes import Piece, Tools, render_skeleton, shape_of
from openft.data.render import RenderedChat, Tokenizer, end_of_turn_id, render_chat

Conversation = tuple[Sequence[Mapping[str, Any]], Tools]
Counts = tuple[int, int]  # (tokens, tokens that carry loss among the first `limit`)
_Texts = list[tuple[str, bool]]  # the pieces to tokenize, and whether each is a trained answer
_Plan = tuple[_Texts, Hashable | None] | RenderedChat | ValueError

_MAX_CACHED_CHARS = 1_000_000  # about one batch of pieces, plus the ones that keep coming back
_MAX_SHAPES = 4096  # tool calls make many shapes: keep memory bounded on such files

_PROBE: list[Conversation] = [
    (
        [
            {"role": "system", "content": "  Be brief.\n"},
            {"role": "user", "content": " hi <think>\n"},
            {"role": "assistant", "content": "\n<think>a</think> Hello ", "weight": 0},
            {"role": "user", "content": "again\t"},
            {"role": "assistant", "content": " Bye.\n\n"},
        ],
        None,
    ),
    ([{"role": "user", "content": "{{ x }} {% y %}"}, {"role": "assistant", "content": "  "}], None),
]


class BatchRenderer:
    """Counts (or renders) batches of conversations with results equal to `render_chat`'s."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        try:
            self._end_id: int | None = end_of_turn_id(tokenizer)
        except ValueError:
            self._end_id = None
        # The end-of-turn token as text: an answer's loss stops after its last occurrence.
        self._end_text = tokenizer.decode([self._end_id]) if self._end_id is not None else ""
        self._skeletons: dict[Hashable, tuple[Piece, ...] | None] = {}  # None: use render_chat
        # text -> (its number of tokens, how many of them carry loss when it is a trained answer)
        self._counted: dict[str, Counts] = {"": (0, 0)}
        self._cached_chars = 0
        self.fast = True
        self.fast = self._passes_probe()

    def count(self, conversations: Sequence[Conversation], limit: int) -> list[Counts | ValueError]:
        """Per conversation: its tokens, and how many of its first `limit` tokens carry loss."""
        results: list[Counts | ValueError] = []
        for conversation, plan in zip(conversations, self._plans(conversations), strict=True):
            if isinstance(plan, tuple) and plan[1] is None:
                results.append(self._counts(plan[0], limit))
                continue
            rendered = self._checked(conversation, plan)
            results.append(rendered if isinstance(rendered, ValueError) else count_rendered(rendered, limit))
        if self._cached_chars > _MAX_CACHED_CHARS:
            self._counted = {"": (0, 0)}
            self._cached_chars = 0
        return results

    def render(self, conversations: Sequence[Conversation]) -> list[RenderedChat | ValueError]:
        """One result per conversation: its tokens and loss mask, or why it cannot be rendered."""
        return [
            self._checked(conversation, plan)
            for conversation, plan in zip(conversations, self._plans(conversations), strict=True)
        ]

    def count_texts(self, texts: list[str]) -> list[int]:
        """The number of tokens of each text (as `tokenizer.encode(text, add_special_tokens=False)`)."""
        self._count_missing(texts)
        return [self._counted[text][0] for text in texts]

    def encode(self, texts: list[str]) -> list[list[int]]:
        """What `tokenizer.encode(text, add_special_tokens=False)` gives for each text, in one call."""
        return [
            encoding if isinstance(encoding, list) else encoding.ids for encoding in self._encodings(texts)
        ]

    def _passes_probe(self) -> bool:
        """Whether placeholder rendering reproduces render_chat on contents that templates like to edit."""
        for messages, tools in _PROBE:
            shape = shape_of(messages, tools)
            skeleton = render_skeleton(shape, self._tokenizer, tools) if shape else None
            if shape is None or skeleton is None:
                return False
            texts = [(piece.fill(shape.values), piece.is_answer) for piece in skeleton]
            self._count_missing([text for text, _ in texts])
            if not self._same(texts, _render_slowly(self._tokenizer, messages, tools)):
                return False
        return True

    def _plans(self, conversations: Sequence[Conversation]) -> list[_Plan]:
        plans = [self._plan(messages, tools) for messages, tools in conversations]
        self._count_missing([text for plan in plans if isinstance(plan, tuple) for text, _ in plan[0]])
        return plans

    def _plan(self, messages: Sequence[Mapping[str, Any]], tools: Tools) -> _Plan:
        """The pieces of text to tokenize (and the shape's key when it is new), or the finished
        result when the fast path does not apply."""
        shape = shape_of(messages, tools) if self.fast else None
        if shape is None:
            return _render_slowly(self._tokenizer, messages, tools)
        new_shape = shape.key not in self._skeletons
        if new_shape:
            if len(self._skeletons) >= _MAX_SHAPES:
                self._skeletons.clear()
            self._skeletons[shape.key] = render_skeleton(shape, self._tokenizer, tools)
        skeleton = self._skeletons[shape.key]
        if skeleton is None:
            return _render_slowly(self._tokenizer, messages, tools)
        texts = [(piece.fill(shape.values), piece.is_answer) for piece in skeleton]
        return texts, shape.key if new_shape else None

    def _checked(self, conversation: Conversation, plan: _Plan) -> RenderedChat | ValueError:
        """A plan's rendering; the first conversation of a shape is rendered both ways, and a shape
        whose results differ is not used again."""
        if not isinstance(plan, tuple):
            return plan
        texts, new_shape = plan
        if new_shape is None:
            return self._assemble(texts)
        reference = _render_slowly(self._tokenizer, *conversation)
        if not self._same(texts, reference):
            self._skeletons[new_shape] = None
        return reference

    def _same(self, texts: _Texts, reference: RenderedChat | ValueError) -> bool:
        """Whether the pieces give the reference's tokens and mask, and the cached counts agree."""
        if not isinstance(reference, RenderedChat):
            return False
        n_tokens = len(reference.input_ids)
        counts = (n_tokens, sum(reference.loss_mask))
        return self._counts(texts, n_tokens) == counts and self._assemble(texts) == reference

    def _counts(self, texts: _Texts, limit: int) -> Counts:
        counted = self._counted
        n_tokens = n_trained = 0
        for text, is_answer in texts:
            piece_tokens, answer_trained = counted[text]
            if is_answer and n_tokens < limit:
                n_trained += min(answer_trained, limit - n_tokens)
            n_tokens += piece_tokens
        return n_tokens, n_trained

    def _assemble(self, texts: _Texts) -> RenderedChat:
        """The pieces tokenized afresh and joined, with render_chat's mask rule."""
        input_ids: list[int] = []
        loss_mask: list[int] = []
        for (_, is_answer), ids in zip(texts, self.encode([text for text, _ in texts]), strict=True):
            n_trained = _trained_of_ids(ids, self._end_id) if is_answer else 0
            input_ids += ids
            loss_mask += [1] * n_trained + [0] * (len(ids) - n_trained)
        return RenderedChat(input_ids=input_ids, loss_mask=loss_mask)

    def _count_missing(self, texts: list[str]) -> None:
        """Count the tokens of new texts in one batch, without turning them into Python lists.

        Special tokens split a text into parts that are tokenized apart, so an answer's trained tokens
        are its tokens less those of the text after its last end-of-turn token (often just "\\n").
        """
        counted = self._counted
        unique = list(dict.fromkeys(text for text in texts if text not in counted))
        if not unique:
            return
        end_text = self._end_text
        tails = {_tail(text, end_text) for text in unique if end_text and end_text in text}
        missing_tails = [tail for tail in tails if tail not in counted]
        for tail, encoding in zip(missing_tails, self._encodings(missing_tails), strict=True):
            counted[tail] = (len(encoding), len(encoding))
        for text, encoding in zip(unique, self._encodings(unique), strict=True):
            n_tokens = len(encoding)
            tail_tokens = counted[_tail(text, end_text)][0] if end_text and end_text in text else 0
            counted[text] = (n_tokens, n_tokens - tail_tokens)
            self._cached_chars += len(text)

    def _encodings(self, texts: list[str]) -> list[Any]:
        """`tokenizer.encode(text, add_special_tokens=False)` for each text, as objects with a length.

        A fast tokenizer's Rust backend is called directly, without offsets, when nothing in the
        transformers wrapper (truncation or padding left on the backend) would change the result.
        """
        if not texts:
            return []
        backend = getattr(self._tokenizer, "backend_tokenizer", None)
        if backend is not None and backend.truncation is None and backend.padding is None:
            encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
            return list(encode(texts, add_special_tokens=False))
        return [list(ids) for ids in self._tokenizer(texts, add_special_tokens=False)["input_ids"]]


def count_rendered(rendered: RenderedChat, limit: int) -> Counts:
    mask = rendered.loss_mask
    return len(mask), sum(mask) if len(mask) <= limit else sum(mask[:limit])


def _tail(text: str, end_text: str) -> str:
    return text[text.rfind(end_text) + len(end_text) :]


def _trained_of_ids(ids: list[int], end_id: int | None) -> int:
    """An answer carries loss up to and including its last end-of-turn token (render_chat's rule)."""
    return len(ids) - ids[::-1].index(end_id) if end_id is not None and end_id in ids else len(ids)


def _render_slowly(
    tokenizer: Tokenizer, messages: Sequence[Mapping[str, Any]], tools: Tools
) -> RenderedChat | ValueError:
    try:
        return render_chat(tokenizer, messages, tools)
    except ValueError as exc:
        return exc
    except Exception as exc:  # a template error (jinja2 raises its own types): unrenderable data
        return ValueError(f"the chat template failed on this example: {exc}")
