"""`openft graders validate|run` against a live server, as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from openft.cli.graders import graders_app
from tests.conftest import LiveServer

GRADER = {
    "type": "multi",
    "name": "routing",
    "graders": {
        "team": {"type": "string_check", "name": "team", "input": "{{sample.output_json.team}}",
                 "reference": "{{item.team}}", "operation": "eq"},
        "short": {"type": "python", "name": "short",
                  "source": "def grade(sample, item):\n"
                            "    return 1.0 if len(sample['output_text']) < 30 else 0.0\n"},
    },
    "calculate_output": "0.5 * team + 0.5 * short",
}  # fmt: skip


def invoke(server: LiveServer, *args: str) -> tuple[int, str]:
    env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "test", "COLUMNS": "200"}
    result = CliRunner().invoke(graders_app, list(args), env=env)
    return result.exit_code, result.output


def test_validate_and_run(shared_server: LiveServer, tmp_path: Path) -> None:
    grader = tmp_path / "grader.json"
    grader.write_text(json.dumps(GRADER))
    assert invoke(shared_server, "validate", str(grader)) == (0, "valid multi grader 'routing'\n")
    item = tmp_path / "item.json"
    item.write_text('{"team": "billing"}')
    code, output = invoke(
        shared_server, "run", str(grader), "--sample", '{"team": "billing"}', "--item", f"@{item}"
    )
    assert code == 0 and output.splitlines() == [
        "reward 1  (multi grader 'routing')",
        "  team: 1.0",
        "  short: 1.0",
    ]
    code, output = invoke(
        shared_server, "run", str(grader), "--sample", "billing", "--item", '{"team": "billing"}'
    )
    assert code == 0 and "reward 0.5" in output and "sample_parse_error" in output


def test_bad_input_is_one_line_naming_what_to_fix(shared_server: LiveServer, tmp_path: Path) -> None:
    grader = tmp_path / "grader.json"
    grader.write_text(json.dumps({**GRADER, "calculate_output": "team + missing"}))
    code, output = invoke(shared_server, "validate", str(grader))
    assert code == 1 and "calculate_output uses missing" in output
    code, output = invoke(shared_server, "run", str(tmp_path / "absent.json"), "--sample", "x")
    assert code == 1 and "absent.json: no such file" in output
    grader.write_text(json.dumps(GRADER))
    code, output = invoke(shared_server, "run", str(grader), "--sample", "x", "--item", "{team")
    assert code == 1 and "--item is not JSON" in output
