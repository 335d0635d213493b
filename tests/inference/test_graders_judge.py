"""Model graders judge through the serving engine: a project's own fine-tuned model as the judge."""

from __future__ import annotations

from tests.inference.conftest import FIXED_ANSWER, Trained


def test_a_fine_tuned_judge_answers_label_and_score_graders(trained: Trained) -> None:
    client = trained.server.client()
    graders = client.fine_tuning.alpha.graders
    answer = client.chat.completions.create(
        model=trained.full_model,
        messages=[{"role": "user", "content": "Is this polite? Thanks!"}],
        temperature=0,
        max_completion_tokens=64,
    )
    assert answer.choices[0].message.content == FIXED_ANSWER
    # The judge was fine-tuned to answer FIXED_ANSWER to anything: as a label, it always "passes".
    label = {
        "type": "label_model",
        "name": "judge",
        "model": trained.full_model,
        "input": [{"role": "user", "content": "Is this polite? {{sample.output_text}}"}],
        "labels": [FIXED_ANSWER, "rude"],
        "passing_labels": [FIXED_ANSWER],
    }
    multi = {"type": "multi", "name": "m", "graders": {"polite": label}, "calculate_output": "polite"}
    result = graders.run(grader=multi, model_sample="Thanks!", item={})  # type: ignore[arg-type]
    assert result.reward == 1.0, result.metadata.errors
    assert result.metadata.sampled_model_name == trained.full_model
    assert result.model_grader_token_usage_per_model[trained.full_model] > 0

    # A score grader reading the same judge finds no number in its answer: a parse error, reward 0.
    score = {
        "type": "score_model",
        "name": "s",
        "model": trained.full_model,
        "input": [{"role": "user", "content": "Score {{sample.output_text}}"}],
    }
    scored = graders.run(grader=score, model_sample="Thanks!", item={})  # type: ignore[arg-type]
    assert scored.reward == 0.0 and scored.metadata.errors.model_grader_parse_error

    # A judge the project cannot see: a server error that says so, not a 500.
    unknown = dict(score, model="ft:openft-tiny:someone-else:x:abc")
    missing = graders.run(grader=unknown, model_sample="Thanks!", item={})  # type: ignore[arg-type]
    assert missing.metadata.errors.model_grader_server_error
    assert "could not answer" in (missing.metadata.errors.model_grader_server_error_details or "")
