"""The built-in models' tokenizer: one token per byte, plus three special tokens, built in code.

Token id `b` is byte `b` (0-255), so any UTF-8 text round-trips and nothing is learned from a corpus:
the vocabulary cannot drift between machines or library versions. The special tokens follow at 256-258.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openft.models.chat_template import CHATML_TEMPLATE, END_OF_TEXT, IM_END, IM_START, SPECIAL_TOKENS

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

N_BYTES = 256
VOCAB_SIZE = N_BYTES + len(SPECIAL_TOKENS)


def byte_to_char() -> dict[int, str]:
    """The byte-level pre-tokenizer's alphabet: printable bytes stand for themselves, the rest are
    shifted past U+0100 so that every byte is a visible character (the usual GPT-2 table)."""
    printable = {
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    }
    table: dict[int, str] = {}
    n_shifted = 0
    for byte in range(N_BYTES):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(N_BYTES + n_shifted)
            n_shifted += 1
    return table


def build_byte_tokenizer(model_max_length: int) -> PreTrainedTokenizerFast:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {char: byte for byte, char in byte_to_char().items()}
    # A BPE without merges is a plain byte vocabulary; the regex split is pointless without merges.
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS])

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=None,
        unk_token=None,
        eos_token=IM_END,
        pad_token=END_OF_TEXT,
        additional_special_tokens=[IM_START],
        model_max_length=model_max_length,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer
