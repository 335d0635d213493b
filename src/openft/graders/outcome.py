"""What running a grader produces: a reward and OpenAI's error flags, as the alpha `/run` endpoint
reports them (`metadata.errors`). A grader never raises for a bad sample: it flags and scores 0."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ErrorFlags:
    formula_parse_error: bool = False
    invalid_variable_error: bool = False
    model_grader_parse_error: bool = False
    model_grader_refusal_error: bool = False
    model_grader_server_error: bool = False
    model_grader_server_error_details: str | None = None
    other_error: bool = False
    python_grader_runtime_error: bool = False
    python_grader_runtime_error_details: str | None = None
    python_grader_server_error: bool = False
    python_grader_server_error_type: str | None = None
    sample_parse_error: bool = False
    truncated_observation_error: bool = False
    unresponsive_reward_error: bool = False

    def any(self) -> bool:
        return any(value is True for value in asdict(self).values())

    def merge(self, other: ErrorFlags) -> None:
        """Raise every flag `other` raised (details: the first one seen is kept)."""
        for name, value in asdict(other).items():
            if value and not getattr(self, name):
                setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def first_problem(self) -> str | None:
        """A short description of the first raised flag, for logs and event messages."""
        details = self.python_grader_runtime_error_details or self.model_grader_server_error_details
        for name, value in asdict(self).items():
            if value is True:
                return f"{name}: {details}" if details else name
        return None


@dataclass
class Outcome:
    """One grader's verdict on one sample."""

    reward: float
    errors: ErrorFlags = field(default_factory=ErrorFlags)
    sub_rewards: dict[str, float] = field(default_factory=dict)
    token_usage: dict[str, int] = field(default_factory=dict)  # judge model -> tokens it used
    sampled_model_name: str | None = None

    @classmethod
    def failed(cls, **flags: Any) -> Outcome:
        return cls(0.0, ErrorFlags(**flags))
