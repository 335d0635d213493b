"""Tokenizers by directory, loaded once and shared by the request threads and the scheduler."""

from __future__ import annotations

import threading
from typing import Any

from openft.inference.token_text import TokenTexts
from openft.inference.types import ModelLoadError


class TokenizerCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokenizers: dict[str, Any] = {}
        self._texts: dict[str, TokenTexts] = {}

    def get(self, path: str) -> Any:
        with self._lock:
            tokenizer = self._tokenizers.get(path)
            if tokenizer is None:
                tokenizer = self._tokenizers[path] = _load(path)
                self._texts[path] = TokenTexts(tokenizer)
            return tokenizer

    def texts(self, path: str) -> TokenTexts:
        self.get(path)
        return self._texts[path]


def _load(path: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the tokenizer at {path}: {exc}") from exc
