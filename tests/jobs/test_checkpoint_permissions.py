"""Checkpoint permissions through the official SDK: one project shares a fine-tuned model with another,
which then chats with it and fine-tunes from it; revoking stops it at the next request; a third project
never sees the model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import openai
import pytest
from openai import OpenAI

from openft.services.auth import find_project
from openft.train.synthetic import make_split
from tests.jobs.conftest import synthetic_files, upload_examples, wait_for_job

if TYPE_CHECKING:
    from tests.conftest import LiveServer

PROMPT = [{"role": "user", "content": "Hello"}]


def project_id(server: LiveServer, name: str) -> str:
    found = find_project(server.ctx, name)
    assert found is not None
    return found.id


def chat(client: OpenAI, model: str) -> str | None:
    answer = client.chat.completions.create(model=model, messages=PROMPT, max_tokens=4, temperature=0)  # type: ignore[arg-type]
    return answer.choices[0].message.content


def trained_model(client: OpenAI) -> tuple[str, str]:
    """A finished job's final model and its earlier checkpoint's model."""
    training_file, _ = synthetic_files(client, n_train=20, n_valid=2)
    job = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=training_file,
        suffix="shared",
        hyperparameters={"n_epochs": 2, "batch_size": 4},
    )
    job = wait_for_job(client, job.id)
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model is not None
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    earlier = [c.fine_tuned_model_checkpoint for c in checkpoints if c.step_number == 5]
    return job.fine_tuned_model, earlier[0]


@pytest.mark.slow
def test_a_shared_model_is_usable_until_revoked(job_server: LiveServer) -> None:
    alpha_key = job_server.create_key("alpha")
    alpha = job_server.client(alpha_key)
    beta = job_server.client(job_server.create_key("beta"))
    gamma = job_server.client(job_server.create_key("gamma"))
    job_server.create_key("delta")
    beta_id, delta_id = project_id(job_server, "beta"), project_id(job_server, "delta")
    model, checkpoint = trained_model(alpha)
    permissions = alpha.fine_tuning.checkpoints.permissions
    check_bad_requests(job_server, alpha, alpha_key, model)

    # Before any permission, beta cannot use or even see the model.
    with pytest.raises(openai.NotFoundError):
        beta.models.retrieve(model)
    with pytest.raises(openai.NotFoundError):
        chat(beta, model)
    with pytest.raises(openai.NotFoundError):
        beta.fine_tuning.checkpoints.permissions.create(model, project_ids=[beta_id])

    granted = permissions.create(model, project_ids=[beta_id])
    assert len(granted.data) == 1
    permission = granted.data[0]
    assert permission.object == "checkpoint.permission" and permission.id.startswith("cp_")
    assert permission.project_id == beta_id and permission.created_at > 0
    # Granting again returns the same permission; a project's name works as well as its id.
    assert [p.id for p in permissions.create(model, project_ids=["beta"]).data] == [permission.id]
    with pytest.warns(DeprecationWarning):  # the SDK's older name for the list, still sent as a GET
        listed = permissions.retrieve(model)
    assert [p.id for p in listed.data] == [permission.id] and listed.has_more is False

    # Beta: retrieve, list, chat, fine-tune from it.
    assert beta.models.retrieve(model).owned_by == "alpha"
    assert model in [m.id for m in beta.models.list()]
    assert isinstance(chat(beta, model), str)
    beta_file = upload_examples(beta, make_split(10, 1, seed=1)[0])
    follow_up = beta.fine_tuning.jobs.create(
        model=model, training_file=beta_file, hyperparameters={"n_epochs": 1}
    )
    follow_up = wait_for_job(beta, follow_up.id)
    assert follow_up.status == "succeeded", follow_up.error
    assert follow_up.fine_tuned_model is not None
    assert follow_up.fine_tuned_model.startswith("ft:openft-tiny:beta::")
    with pytest.raises(openai.NotFoundError):  # beta's own new model is not alpha's to use
        alpha.models.retrieve(follow_up.fine_tuned_model)

    # Beta may not delete the model nor manage who may use it.
    with pytest.raises(openai.PermissionDeniedError) as caught:
        beta.models.delete(model)
    assert caught.value.status_code == 403 and caught.value.param == "model"
    beta_permissions = beta.fine_tuning.checkpoints.permissions
    for call in [
        lambda: beta_permissions.create(model, project_ids=[delta_id]),
        lambda: beta_permissions.list(model),
        lambda: beta_permissions.delete(permission.id, fine_tuned_model_checkpoint=model),
    ]:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            call()
        assert denied.value.body["message"].startswith(f"The model `{model}` belongs to project alpha")  # type: ignore[index]
    assert isinstance(chat(alpha, model), str)  # nothing of alpha's changed

    # Gamma never sees it.
    assert model not in [m.id for m in gamma.models.list()]
    with pytest.raises(openai.NotFoundError):
        gamma.models.retrieve(model)
    with pytest.raises(openai.NotFoundError):
        chat(gamma, model)
    with pytest.raises(openai.BadRequestError) as refused:
        gamma.fine_tuning.jobs.create(model=model, training_file=beta_file)
    assert refused.value.param == "model"

    # A checkpoint is shared on its own; listing pages on last_id, filters and orders.
    on_checkpoint = permissions.create(checkpoint, project_ids=[beta_id, delta_id]).data
    assert [p.project_id for p in on_checkpoint] == [beta_id, delta_id]
    ascending = [p.id for p in permissions.list(checkpoint, limit=1, order="ascending")]
    assert ascending == [p.id for p in on_checkpoint]
    assert [p.id for p in permissions.list(checkpoint)] == ascending[::-1]
    assert [p.project_id for p in permissions.list(checkpoint, project_id=delta_id)] == [delta_id]

    # Revoking takes effect at the next request; the checkpoint's own permission stays.
    deleted = permissions.delete(permission.id, fine_tuned_model_checkpoint=model)
    assert (
        deleted.id == permission.id and deleted.deleted is True and deleted.object == "checkpoint.permission"
    )
    with pytest.raises(openai.NotFoundError):
        chat(beta, model)
    with pytest.raises(openai.NotFoundError):
        beta.models.retrieve(model)
    with pytest.raises(openai.BadRequestError):
        beta.fine_tuning.jobs.create(model=model, training_file=beta_file)
    assert permissions.list(model).data == []
    assert isinstance(chat(beta, checkpoint), str)
    with pytest.raises(openai.NotFoundError):
        permissions.delete(permission.id, fine_tuned_model_checkpoint=model)

    # Deleting the model takes its permissions with it.
    alpha.models.delete(checkpoint)
    with pytest.raises(openai.NotFoundError):
        chat(beta, checkpoint)
    with pytest.raises(openai.NotFoundError):
        permissions.list(checkpoint)


def check_bad_requests(server: LiveServer, alpha: OpenAI, alpha_key: str, model: str) -> None:
    """Bad permission requests get OpenAI's error envelope, naming the field, and change nothing."""
    http = server.http(alpha_key)
    url = f"fine_tuning/checkpoints/{model}/permissions"

    cases = [
        ({"project_ids": ["proj_nope"]}, "project_ids[0]", "there is no project 'proj_nope'"),
        ({"project_ids": ["beta", "alpha"]}, "project_ids[1]", "is the project that owns the model"),
        ({"project_ids": []}, "project_ids", None),
        ({}, "project_ids", "Missing required parameter"),
        ({"project_ids": ["beta"], "extra": 1}, "extra", None),
    ]
    for body, param, words in cases:
        response = http.post(url, json=body)
        assert response.status_code == 400, (body, response.text)
        error = response.json()["error"]
        assert error["param"] == param and error["type"] == "invalid_request_error"
        if words:
            assert words in error["message"]
    assert alpha.fine_tuning.checkpoints.permissions.list(model).data == []  # nothing was granted

    for query, param in [
        ({"order": "sideways"}, "order"),
        ({"limit": 0}, "limit"),
        ({"after": "cp_x"}, "after"),
    ]:
        response = http.get(url, params=query)
        assert response.status_code in (400, 404), response.text
        assert response.json()["error"]["param"] == param
    missing = http.get("fine_tuning/checkpoints/ft:openft-tiny:alpha::nothing/permissions")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def restarted(server: LiveServer, *, run_worker: bool) -> LiveServer:
    server.stop()
    server.run_worker = run_worker
    return server.start()


@pytest.mark.slow
def test_a_queued_job_fails_when_its_model_is_no_longer_shared(job_server: LiveServer) -> None:
    alpha_key, beta_key = job_server.create_key("alpha"), job_server.create_key("beta")
    model, _ = trained_model(job_server.client(alpha_key))
    server = restarted(job_server, run_worker=False)  # the job waits in validating_files
    alpha, beta = server.client(alpha_key), server.client(beta_key)
    permission = alpha.fine_tuning.checkpoints.permissions.create(model, project_ids=["beta"]).data[0]
    beta_file = upload_examples(beta, make_split(10, 1, seed=2)[0])
    job = beta.fine_tuning.jobs.create(model=model, training_file=beta_file)
    alpha.fine_tuning.checkpoints.permissions.delete(permission.id, fine_tuned_model_checkpoint=model)

    server = restarted(server, run_worker=True)
    failed = wait_for_job(server.client(beta_key), job.id)
    assert failed.status == "failed"
    assert failed.error.code == "model_not_available" and failed.error.param == "model"
    assert model in failed.error.message
