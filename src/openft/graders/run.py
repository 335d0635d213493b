"""Score samples with a checked grader (openft.graders.validate): one entry point for every caller.

`grade_samples` takes many samples at once so that a python grader starts one sandbox process for all
of them (and a multi grader's python parts too); `run_grader` is the alpha `/run` endpoint's answer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from openft.graders import model_graders, multi, string_check, text_similarity
from openft.graders.model_graders import Judge
from openft.graders.outcome import Outcome
from openft.graders.python_sandbox import SandboxLimits, grade_with_python
from openft.graders.sample import Sample
from openft.graders.text_similarity import Embedder

Item = Mapping[str, Any] | None


def grade_samples(
    grader: Mapping[str, Any],
    samples: Sequence[tuple[str | Mapping[str, Any], Item]],
    *,
    judge: Judge | None = None,
    embed: Embedder | None = None,
    limits: SandboxLimits = SandboxLimits(),
) -> list[Outcome]:
    """One Outcome per (model sample, dataset item), in order. A sample is its text, or a sample
    namespace (`output_text` and any other fields templates may read)."""
    parsed = [(_sample(sample), item) for sample, item in samples]
    python_outcomes = _python_outcomes(grader, parsed, limits)
    outcomes = []
    for index, (sample, item) in enumerate(parsed):

        def one(
            sub: Mapping[str, Any], sample: Sample = sample, item: Item = item, index: int = index
        ) -> Outcome:
            if sub["type"] == "python":
                return python_outcomes[sub["source"]][index]
            if sub["type"] == "multi":
                return multi.combine(sub, one)
            return _grade_one(sub, sample, item, judge, embed)

        outcomes.append(one(grader))
    return outcomes


def run_grader(
    grader: Mapping[str, Any],
    model_sample: str,
    item: Item,
    *,
    judge: Judge | None = None,
    embed: Embedder | None = None,
) -> dict[str, Any]:
    """The alpha graders `/run` response for one sample."""
    started = time.perf_counter()
    outcome = grade_samples(grader, [(model_sample, item)], judge=judge, embed=embed)[0]
    return {
        "reward": outcome.reward,
        "metadata": {
            "name": grader["name"],
            "type": grader["type"],
            "errors": outcome.errors.as_dict(),
            "execution_time": time.perf_counter() - started,
            "scores": dict(outcome.sub_rewards),
            "token_usage": sum(outcome.token_usage.values()) if outcome.token_usage else None,
            "sampled_model_name": outcome.sampled_model_name,
        },
        "sub_rewards": dict(outcome.sub_rewards),
        "model_grader_token_usage_per_model": dict(outcome.token_usage),
    }


def _sample(sample: str | Mapping[str, Any]) -> Sample:
    if isinstance(sample, str):
        return Sample.from_text(sample)
    extra = {key: value for key, value in sample.items() if key not in ("output_text", "output_json")}
    return Sample.from_text(str(sample.get("output_text") or ""), extra)


def _grade_one(
    grader: Mapping[str, Any], sample: Sample, item: Item, judge: Judge | None, embed: Embedder | None
) -> Outcome:
    kind = grader["type"]
    if kind == "string_check":
        return string_check.grade(grader, sample, item)
    if kind == "text_similarity":
        return text_similarity.grade(grader, sample, item, embed)
    if kind == "score_model":
        return model_graders.grade_score(grader, sample, item, judge)
    if kind == "label_model":
        return model_graders.grade_label(grader, sample, item, judge)
    raise ValueError(f"unknown grader type {kind!r}")


def _python_outcomes(
    grader: Mapping[str, Any], parsed: Sequence[tuple[Sample, Item]], limits: SandboxLimits
) -> dict[str, list[Outcome]]:
    """Every python grader inside `grader` (by source), run once over all samples."""
    sources = (
        [grader["source"]]
        if grader["type"] == "python"
        else [sub["source"] for sub in grader.get("graders", {}).values() if sub["type"] == "python"]
    )
    pairs = [(_python_sample(sample), dict(item or {})) for sample, item in parsed]
    return {source: grade_with_python(source, pairs, limits) for source in dict.fromkeys(sources)}


def _python_sample(sample: Sample) -> dict[str, Any]:
    """The `sample` argument of grade(sample, item), shaped as OpenAI passes it."""
    return {
        "output_text": sample.output_text,
        "output_json": sample.output_json if sample.is_json else None,
        "output_tools": [],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": sample.output_text}}],
    }
