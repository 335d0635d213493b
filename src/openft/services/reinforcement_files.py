"""A reinforcement job's files, checked before it is queued: every line a prompt the grader can score.

Each line is `{"messages": [...], "tools"?: [...], ...}` with messages ending before the answer (a final
assistant message is allowed: graders often read a reference from the line, not from messages); every
`{{item.*}}` field the grader reads must be in every line. A failure names the file, line and field in
OpenAI's `invalid_training_file` wording. (The full data checker's token counts and lint are for
supervised and preference files.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openft.data.lines import BadLine, iter_json_lines
from openft.data.validate_chat import validate_chat
from openft.graders.criteria import templates_of
from openft.graders.templates import TemplateError, check_renders


class ReinforcementFileError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_reinforcement_file(path: Path, purpose: str, file_id: str, grader: dict[str, Any]) -> int:
    """The number of prompts in the file; ReinforcementFileError with OpenAI's wording otherwise."""
    start = f"The job failed due to an invalid {purpose} file. "
    templates = list(templates_of(grader))
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
        issues = validate_chat(value, line_no, needs_answer=False)
        if issues:
            raise ReinforcementFileError(f"{start}{where}, {issues[0].location()}: {issues[0].message}")
        for template in templates:
            try:
                check_renders(template, {"item": value}, only="item")
            except TemplateError as exc:
                raise ReinforcementFileError(
                    f"{start}{where}: the grader reads {{{{{exc.reference}}}}}, but {exc.message} "
                    "Add the field to every line, or change the grader."
                ) from None
        n += 1
    if n == 0:
        raise ReinforcementFileError(f"{start}The file has no examples.")
    return n
