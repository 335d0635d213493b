"""The byte-level tokenizer: every text round-trips, and a saved copy tokenizes exactly like the original."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from openft.models.tokenizer import VOCAB_SIZE, build_byte_tokenizer

TEXTS = [
    "Hello, world!",
    "digits 0123456789 and 3.14159 and 1,000,000",
    "héllo wörld — naïve café, Ελληνικά, 日本語のテキスト, עברית",
    "emoji 🤖👍🏽 👨‍👩‍👧 and flags 🇫🇷",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\n\n\nand    runs     of spaces",
    "<|im_start|>user\nhi<|im_end|>\n<|endoftext|>",
    'code: def f(x):\n    return {"a": [1, 2]}  # comment',
    "\x00\x01 control bytes \x7f",
    "",
]


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    return build_byte_tokenizer(model_max_length=2048)


@pytest.mark.parametrize("text", TEXTS)
def test_decode_of_encode_gives_the_text_back(tokenizer: PreTrainedTokenizerFast, text: str) -> None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text


def test_plain_text_is_one_token_per_utf8_byte(tokenizer: PreTrainedTokenizerFast) -> None:
    text = "naïve 🤖"
    assert tokenizer.encode(text, add_special_tokens=False) == list(text.encode("utf-8"))


def test_special_tokens_are_single_ids_after_the_bytes(tokenizer: PreTrainedTokenizerFast) -> None:
    assert len(tokenizer) == VOCAB_SIZE == 259
    ids = tokenizer.encode("<|endoftext|><|im_start|><|im_end|>", add_special_tokens=False)
    assert ids == [256, 257, 258]
    assert tokenizer.pad_token_id == 256
    assert tokenizer.eos_token_id == 258
    assert tokenizer.bos_token_id is None
    assert tokenizer.decode(ids, skip_special_tokens=True) == ""


def test_encoding_adds_no_tokens_of_its_own(tokenizer: PreTrainedTokenizerFast) -> None:
    assert tokenizer("abc")["input_ids"] == [97, 98, 99]


def test_saved_tokenizer_reloads_with_identical_ids(
    tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    tokenizer.save_pretrained(tmp_path)
    # AutoTokenizer reads the model type from config.json; a Llama one keeps our tokenizer as saved.
    (tmp_path / "config.json").write_text('{"model_type": "llama", "vocab_size": 259}')
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    for text in TEXTS:
        expected = tokenizer.encode(text, add_special_tokens=False)
        assert reloaded.encode(text, add_special_tokens=False) == expected, text
        assert reloaded(text)["input_ids"] == expected, text
        assert reloaded.decode(expected) == text
    assert reloaded.chat_template == tokenizer.chat_template
    assert reloaded.model_max_length == 2048


def test_built_model_directory_tokenizes_like_the_in_memory_tokenizer(
    tokenizer: PreTrainedTokenizerFast, tiny_dir: Path
) -> None:
    reloaded = AutoTokenizer.from_pretrained(tiny_dir)
    for text in TEXTS:
        assert reloaded.encode(text, add_special_tokens=False) == tokenizer.encode(
            text, add_special_tokens=False
        )
    messages = [{"role": "user", "content": "2 + 2 = 4 ✓"}]
    assert reloaded.apply_chat_template(messages, tokenize=False) == tokenizer.apply_chat_template(
        messages, tokenize=False
    )
