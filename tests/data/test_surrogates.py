"""A lone UTF-16 surrogate ("\\ud800" in JSON) is not text: upload and check name its line and field."""

from __future__ import annotations

from pathlib import Path

from openft.data import check_file
from openft.data.lines import BadLine, parse_json_line
from openft.data.scan import scan_jsonl
from openft.data.surrogates import lone_surrogate_field

GOOD = '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}'
# An emoji written as its escaped UTF-16 pair is valid; its first half alone is not.
PAIRED = (
    '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "\\ud83d\\ude00"}]}'
)
LONE = '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "ok \\ud800"}]}'


def _write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_field_of_a_lone_surrogate_is_named_wherever_it_is() -> None:
    assert lone_surrogate_field({"messages": [{"content": "fine"}, {"content": "x\ud800"}]}) == (
        "messages[1].content"
    )
    assert lone_surrogate_field({"tools": [{"function": {"name": "\udfff"}}]}) == "tools[0].function.name"
    assert lone_surrogate_field(["a", "\U0001f600"]) is None  # an emoji, as JSON's escaped pair decodes
    assert lone_surrogate_field("\ud800") == ""


def test_a_line_with_a_lone_surrogate_is_a_bad_line_and_a_paired_one_is_not() -> None:
    bad = parse_json_line(3, LONE)
    assert isinstance(bad, BadLine) and bad.code == "invalid_utf8" and bad.field == "messages[1].content"
    assert bad.message.startswith("line 3: 'messages[1].content' has an invalid character")
    assert "unpaired surrogate" in bad.message
    assert parse_json_line(1, PAIRED)["messages"][1]["content"] == "\U0001f600"


def test_upload_scan_fails_the_file_at_the_line(tmp_path: Path) -> None:
    scan = scan_jsonl(_write(tmp_path, GOOD, PAIRED, LONE, GOOD))
    assert scan.format is None and scan.error is not None
    assert scan.error.startswith("line 3: 'messages[1].content' has an invalid character")


def test_the_check_reports_line_message_and_field_and_blocks_the_job(tmp_path: Path) -> None:
    report = check_file(_write(tmp_path, *([GOOD] * 9), LONE, PAIRED))
    assert not report.ok
    (error,) = report.training.errors
    (issue,) = error.first
    assert (error.code, issue.line, issue.field) == ("invalid_utf8", 10, "messages[1].content")
    assert "unpaired surrogate" in issue.message
    blocking = report.blocking_error()
    assert blocking is not None and blocking.line == 10 and "'messages[1].content'" in blocking.message
