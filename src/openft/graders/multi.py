"""`multi`: named sub-graders, combined by the `calculate_output` formula (openft.graders.formula)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from openft.graders.formula import FormulaError, parse_formula
from openft.graders.outcome import ErrorFlags, Outcome


def combine(grader: Mapping[str, Any], grade_sub: Callable[[Mapping[str, Any]], Outcome]) -> Outcome:
    outcome = Outcome(0.0)
    for name, sub in grader["graders"].items():
        sub_outcome = grade_sub(sub)
        outcome.sub_rewards[name] = sub_outcome.reward
        outcome.errors.merge(sub_outcome.errors)
        for model, tokens in sub_outcome.token_usage.items():
            outcome.token_usage[model] = outcome.token_usage.get(model, 0) + tokens
        outcome.sampled_model_name = outcome.sampled_model_name or sub_outcome.sampled_model_name
    try:
        outcome.reward = parse_formula(grader["calculate_output"]).evaluate(outcome.sub_rewards)
    except FormulaError:
        outcome.errors.merge(ErrorFlags(formula_parse_error=True))
        outcome.reward = 0.0
    return outcome
