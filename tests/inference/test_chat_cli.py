"""`openft chat`: streams a model's answers in the terminal; `--compare` shows two models side by side."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from openft.cli.chat import chat
from tests.inference.conftest import FIXED_ANSWER, Trained

app = typer.Typer()
app.command()(chat)
runner = CliRunner(env={"COLUMNS": "200"})


def _run(trained: Trained, *args: str, stdin: str | None = None) -> tuple[int, str]:
    base_url = ["--base-url", trained.server.base_url, "--temperature", "0", "--max-tokens", "40"]
    result = runner.invoke(app, [*args, *base_url], input=stdin)
    return result.exit_code, result.output


@pytest.mark.slow
def test_one_question_prints_the_answer(trained: Trained) -> None:
    code, output = _run(trained, trained.full_model, "-m", "Hi there")
    assert code == 0 and output.strip() == FIXED_ANSWER


@pytest.mark.slow
def test_an_interactive_session_keeps_the_conversation_until_exit(trained: Trained) -> None:
    code, output = _run(trained, trained.full_model, stdin="Hi there\n/reset\nHow are you?\n/exit\n")
    assert code == 0 and output.count(FIXED_ANSWER) == 2


@pytest.mark.slow
def test_compare_shows_both_models_answers(trained: Trained) -> None:
    code, output = _run(trained, trained.full_model, "--compare", "openft-tiny", "-m", "Hi there")
    assert code == 0
    assert trained.full_model in output and "openft-tiny" in output and FIXED_ANSWER in output


def test_an_unknown_model_is_one_line_and_exit_status_1(trained: Trained) -> None:
    code, output = _run(trained, "no-such-model", "-m", "Hi")
    assert code == 1
    assert "The model `no-such-model` does not exist" in output and "Traceback" not in output
