"""The README's quickstart, run as written against a live server: it prints the 5 events it asks for."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from openft.train.synthetic import make_split, write_jsonl

if TYPE_CHECKING:
    from tests.conftest import LiveServer

README = Path(__file__).parents[2] / "README.md"


def quickstart_code() -> str:
    section = README.read_text().split("## Quickstart with the official SDK", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match
    return match.group(1)


@pytest.mark.slow
def test_the_quickstart_prints_five_events_then_the_model_and_an_answer(
    cli_server: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_jsonl(tmp_path / "train.jsonl", make_split(12, 0, seed=5)[0])
    monkeypatch.chdir(tmp_path)
    code = quickstart_code()
    assert "http://127.0.0.1:8000/v1" in code
    assert 'model="smollm2-135m-instruct"' in code
    # The built-in tiny model stands in for the pretrained one here (seconds, not minutes on CI's cores);
    # the same loop on smollm2-135m-instruct is tests/jobs/test_pretrained_seed_flow.py.
    code = code.replace('model="smollm2-135m-instruct"', 'model="openft-tiny"')
    exec(code.replace("http://127.0.0.1:8000/v1", cli_server.base_url), {})
    lines = capsys.readouterr().out.splitlines()
    model_line = next(i for i, line in enumerate(lines) if line.startswith("ft:openft-tiny:personal:demo:"))
    assert model_line == 5, lines  # `limit=5`: one page of events, not every page
    assert lines[0] == "The job has successfully completed"  # newest first
