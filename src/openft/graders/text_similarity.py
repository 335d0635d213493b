"""`text_similarity`: a similarity metric between the rendered `input` and `reference`, in [0, 1]."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openft.evals import similarity
from openft.graders.outcome import Outcome
from openft.graders.sample import RenderFailed, Sample, render_or_flag

METRICS = tuple(similarity.METRICS)
UNSUPPORTED_METRICS = similarity.UNSUPPORTED_METRICS


def grade(grader: Mapping[str, Any], sample: Sample, item: Mapping[str, Any] | None) -> Outcome:
    try:
        output = render_or_flag(grader["input"], sample, item)
        reference = render_or_flag(grader["reference"], sample, item)
    except RenderFailed as failed:
        return Outcome(0.0, failed.flags)
    return Outcome(similarity.METRICS[grader["evaluation_metric"]](output, reference))
