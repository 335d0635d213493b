"""A token's text and bytes as OpenAI's logprobs show them (`token`, `bytes`).

A token that is only part of a UTF-8 character has no text of its own; OpenAI writes it as
`bytes:\\xe2\\x80` and gives the bytes, and so does openft. The bytes come from the tokenizer's own
vocabulary: byte-level BPE spells bytes with the GPT-2 alphabet, SentencePiece with `<0xNN>` pieces.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from openft.models.tokenizer import byte_to_char

_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@lru_cache(maxsize=1)
def _char_to_byte() -> dict[str, int]:
    return {char: byte for byte, char in byte_to_char().items()}


class TokenTexts:
    """Per-tokenizer cache of (text, bytes) by token id: logprobs ask for the same ids again and again."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._cache: dict[int, tuple[str, list[int]]] = {}

    def get(self, token_id: int) -> tuple[str, list[int]]:
        found = self._cache.get(token_id)
        if found is None:
            found = self._cache[token_id] = self._lookup(token_id)
        return found

    def _lookup(self, token_id: int) -> tuple[str, list[int]]:
        text = str(self.tokenizer.decode([token_id], skip_special_tokens=False))
        if "\ufffd" not in text:
            return text, list(text.encode("utf-8"))
        raw = self._raw_bytes(token_id)
        if raw is None:
            return text, list(text.encode("utf-8"))
        try:
            return raw.decode("utf-8"), list(raw)
        except UnicodeDecodeError:
            return "bytes:" + "".join(f"\\x{b:02x}" for b in raw), list(raw)

    def _raw_bytes(self, token_id: int) -> bytes | None:
        piece = self.tokenizer.convert_ids_to_tokens(token_id)
        if not isinstance(piece, str):
            return None
        match = _BYTE_PIECE.fullmatch(piece)
        if match:
            return bytes([int(match.group(1), 16)])
        table = _char_to_byte()
        if all(char in table for char in piece):
            return bytes(table[char] for char in piece)
        return None
