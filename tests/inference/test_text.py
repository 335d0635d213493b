"""Incremental decoding, stop sequences, tool-call holding and logprob token texts (no model needed)."""

from __future__ import annotations

import json

from openft.inference.text import IncrementalDecoder, StopMatcher
from openft.inference.token_text import TokenTexts
from openft.inference.tool_calls import ToolCallHold, split_tool_calls
from openft.models.tokenizer import build_byte_tokenizer


def _stream(decoder: IncrementalDecoder, ids: list[int]) -> list[str]:
    return [decoder.add(i) for i in ids]


def test_decoder_holds_back_a_character_until_its_last_byte() -> None:
    tokenizer = build_byte_tokenizer(2048)
    ids = tokenizer.encode("aé€", add_special_tokens=False)
    assert len(ids) == 1 + 2 + 3  # one token per byte
    pieces = _stream(IncrementalDecoder(tokenizer), ids)
    assert pieces == ["a", "", "é", "", "", "€"]


def test_decoder_skips_special_tokens_and_flushes_a_broken_tail() -> None:
    tokenizer = build_byte_tokenizer(2048)
    decoder = IncrementalDecoder(tokenizer)
    im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert "".join(_stream(decoder, [*tokenizer.encode("hi", add_special_tokens=False), im_start])) == "hi"
    decoder.add(tokenizer.encode("é", add_special_tokens=False)[0])  # half a character
    assert decoder.flush() == "\ufffd"


def test_stop_sequences_are_cut_and_never_sent() -> None:
    matcher = StopMatcher(("END", "\n\n"))
    sent = [matcher.feed(piece) for piece in ["Hello E", "N", "x and", " more\n", "\nignored"]]
    assert sent == ["Hello ", "", "ENx and", " more", ""]
    assert matcher.stopped and matcher.flush() == ""


def test_without_a_match_everything_is_sent_by_the_end() -> None:
    matcher = StopMatcher(("###",))
    assert matcher.feed("a#") + matcher.feed("#b#") + matcher.flush() == "a##b#"
    assert not matcher.stopped
    assert StopMatcher(()).feed("x") == "x"


def test_tool_calls_are_parsed_in_the_template_format() -> None:
    text = 'Checking.\n<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
    content, calls = split_tool_calls(text)
    assert content == "Checking."
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Oslo"})
    ]
    assert calls[0].id.startswith("call_") and calls[0].type == "function"
    assert split_tool_calls("plain answer") == ("plain answer", [])
    assert split_tool_calls('<tool_call>{"name": "f", "arguments": {}}</tool_call>')[0] is None


def test_streamed_text_is_held_from_the_first_tool_call_tag() -> None:
    hold = ToolCallHold()
    sent = [
        hold.feed(p)
        for p in ["Sure", ". <tool", "_call>", '{"name": "f", "arguments": {"x": 1}}', "</tool_call>"]
    ]
    assert sent == ["Sure", ". ", "", "", ""]
    text, calls = hold.finish()
    assert text == "" and [c.function.name for c in calls] == ["f"]
    plain = ToolCallHold()
    assert plain.feed("a <to") == "a " and plain.finish() == ("<to", [])


def test_token_texts_show_partial_characters_as_bytes() -> None:
    tokenizer = build_byte_tokenizer(2048)
    texts = TokenTexts(tokenizer)
    assert texts.get(ord("a")) == ("a", [97])
    assert texts.get(ord(" ")) == (" ", [32])
    assert texts.get(0xE2) == ("bytes:\\xe2", [0xE2])
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert texts.get(im_end)[0] == "<|im_end|>"
