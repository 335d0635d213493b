from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    """The built-in models' tokenizer (one token per byte, ChatML template), built in code."""
    from openft.models.tokenizer import build_byte_tokenizer

    return build_byte_tokenizer(model_max_length=2048)
