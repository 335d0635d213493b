"""The meteor metric: NLTK's METEOR with WordNet's synonyms, read from the WordNet database where one is
installed (Debian's wordnet-base, NLTK's data, or OPENFT_WORDNET_DIR); without one a meteor grader is
refused when validated, with what to install."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai import OpenAI

from openft.graders import meteor
from openft.graders.text_similarity import METRICS
from openft.graders.validate import GraderConfigError, validate_grader

METEOR = {
    "type": "text_similarity",
    "name": "meteor",
    "input": "{{sample.output_text}}",
    "reference": "{{item.reply}}",
    "evaluation_metric": "meteor",
}
needs_wordnet = pytest.mark.skipif(
    not meteor.available(), reason="no WordNet database (apt-get install wordnet-base)"
)


@needs_wordnet
def test_scores_match_nltks_published_example() -> None:
    hypothesis = (
        "It is a guide to action which ensures that the military always obeys the commands of the party"
    )
    reference = "It is a guide to action that ensures that the military will forever heed Party commands"
    assert round(METRICS["meteor"](hypothesis, reference), 4) == 0.6944  # NLTK's doctest value
    assert METRICS["meteor"]("this is a cat", "non matching hypothesis") == 0.0


@needs_wordnet
def test_synonyms_and_stems_count_as_matches() -> None:
    exact = METRICS["meteor"]("the cat sat on the mat", "the cat sat on the mat")
    synonym = METRICS["meteor"]("the cat sat on the carpet", "the cat sat on the rug")
    unrelated = METRICS["meteor"]("the cat sat on the banana", "the cat sat on the rug")
    stem = METRICS["meteor"]("the cats sitting", "the cat sits")
    assert exact > 0.99 and synonym > unrelated  # "carpet" and "rug" share a WordNet synset
    assert stem > METRICS["meteor"]("the dogs running", "the cat sits")


@needs_wordnet
def test_the_alpha_run_endpoint_scores_meteor(shared_client: OpenAI) -> None:
    result = shared_client.fine_tuning.alpha.graders.run(
        grader=METEOR,  # type: ignore[arg-type]
        model_sample="Your parcel is on its way.",
        item={"reply": "Your package is on its way."},
    )
    assert 0.5 < result.reward < 1.0
    assert not any(value is True for value in result.metadata.errors.model_dump().values())


def test_without_wordnet_a_meteor_grader_is_refused_with_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(meteor.WORDNET_DIR_ENV, str(tmp_path))  # an empty directory: no database there
    with pytest.raises(GraderConfigError) as caught:
        validate_grader(METEOR)
    assert "apt-get install wordnet-base" in str(caught.value)
    assert caught.value.field == "evaluation_metric"
