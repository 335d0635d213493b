"""A reinforcement job's files, checked before it is queued: every line a prompt the grader can score.

Each line is `{"messages": [...], "tools"?: [...], ...}` with messages ending before the answer (a final
assistant message is allowed: graders often read a reference from the line, not from messages); every
`{{item.*}}` field the grader reads must be in every line. A failure names the file, line and field in
OpenAI's `invalid_training_file` wording. The rules are the data checker's
(`openft data check --method reinforcement --grader`), which reports every line, tokens and lint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openft.data.lines import BadLine, iter_json_lines
from openft.data.validate_prompt import validate_prompt
from openft.graders.item_fields import ItemFields


class ReinforcementFileError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_reinforcement_file(path: Path, purpose: str, file_id: str, grader: dict[str, Any]) -> int:
    """The number of prompts in the file; ReinforcementFileError with OpenAI's wording otherwise."""
    start = f"The job failed due to an invalid {purpose} file. "
    fields = ItemFields(grader)
    n = 0
    for line_no, value in iter_json_lines(path):
        where = f"Input file {file_id} line {line_no}"
        if isinstance(value, BadLine):
            raise ReinforcementFileError(f"{start}{where}: {value.message}")
        if not isinstance(value, dict) or ("input" in value and "messages" not in value):
            raise ReinforcementFileError(
                f"{start}Invalid file format. {where} is not a reinforcement example: a reinforcement job "
                'needs {"messages": [...]} prompts, with the fields its grader reads beside them.'
            )
        issues = validate_prompt(value, line_no)
        if issues:
            field = f", field {issues[0].field}" if issues[0].field else ""
            raise ReinforcementFileError(f"{start}{where}{field}: {issues[0].message}")
        missing = fields.missing(value)
        if missing is not None:
            raise ReinforcementFileError(f"{start}{where}: {missing}")
        n += 1
    if n == 0:
        raise ReinforcementFileError(f"{start}The file has no examples.")
    return n
