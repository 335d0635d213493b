"""A job's log (services/job_events.py) on a real database: events and checkpoints are kept in the order
they were added and paged newest first; the SSE feed reads them oldest first after a position."""

from __future__ import annotations

import json

import pytest

from openft.errors import InvalidRequest, NotFound
from openft.services.context import Project, ServiceContext, now
from openft.services.job_events import add_event, event_seq, events_since, list_checkpoints, list_events
from openft.store.tables import CheckpointRow
from tests.services.conftest import add_job


def add_checkpoint(ctx: ServiceContext, job_id: str, step: int) -> str:
    with ctx.db.session() as session:
        session.add(
            CheckpointRow(
                id=f"ftckpt_{step}",
                job_id=job_id,
                created_at=now(),
                step_number=step,
                model_name=f"ft:openft-tiny:personal::abcd1234:ckpt-step-{step}",
                path=f"/models/{step}",
                metrics_json=json.dumps({"step": step, "train_loss": 1 / step}),
            )
        )
    return f"ftckpt_{step}"


def log(ctx: ServiceContext, job_id: str, *messages: str) -> None:
    """Each message in its own transaction, as the worker reports them."""
    for message in messages:
        with ctx.db.session() as session:
            add_event(session, job_id, message)


def messages(ctx: ServiceContext, project: Project, job_id: str, after: str | None, limit: int) -> list[str]:
    return [e.message for e in list_events(ctx, project, job_id, after=after, limit=limit).data]


def test_an_event_keeps_its_level_type_and_data(ctx: ServiceContext, project: Project) -> None:
    job_id = add_job(ctx, project)
    with ctx.db.session() as session:
        add_event(
            session, job_id, "Step 10/20: training loss=0.5", level="warn", type_="metrics", data={"step": 10}
        )
        add_event(session, job_id, "no data")

    newest, oldest = list_events(ctx, project, job_id, after=None, limit=10).data

    assert (oldest.level, oldest.type, oldest.data, oldest.message) == (
        "warn",
        "metrics",
        {"step": 10},
        "Step 10/20: training loss=0.5",
    )
    assert (newest.level, newest.type, newest.data) == ("info", "message", None)
    assert oldest.id.startswith("ftevent-") and oldest.id != newest.id
    assert abs(oldest.created_at - now()) <= 5


def test_events_are_paged_newest_first_after_the_cursor(ctx: ServiceContext, project: Project) -> None:
    job_id = add_job(ctx, project)
    log(ctx, job_id, *(f"event {n}" for n in range(1, 6)))
    other_job = add_job(ctx, project)
    log(ctx, other_job, "elsewhere")

    first = list_events(ctx, project, job_id, after=None, limit=2)
    assert ([e.message for e in first.data], first.has_more) == (["event 5", "event 4"], True)
    second = list_events(ctx, project, job_id, after=first.data[-1].id, limit=2)
    assert ([e.message for e in second.data], second.has_more) == (["event 3", "event 2"], True)
    last = list_events(ctx, project, job_id, after=second.data[-1].id, limit=2)
    assert ([e.message for e in last.data], last.has_more) == (["event 1"], False)
    assert messages(ctx, project, job_id, None, 100) == [f"event {n}" for n in range(5, 0, -1)]


def test_the_event_feed_reads_oldest_first_after_a_position_with_the_jobs_status(
    ctx: ServiceContext, project: Project
) -> None:
    job_id = add_job(ctx, project, status="paused")
    log(ctx, job_id, "one", "two", "three")

    everything, status = events_since(ctx, project, job_id, 0)
    assert status == "paused"
    assert [event.message for _, event in everything] == ["one", "two", "three"]
    seqs = [seq for seq, _ in everything]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert [seq for seq, _ in everything] == [event_seq(ctx, event.id) for _, event in everything]

    after_first, _ = events_since(ctx, project, job_id, seqs[0])
    assert [event.message for _, event in after_first] == ["two", "three"]
    assert events_since(ctx, project, job_id, seqs[-1])[0] == []
    assert event_seq(ctx, "ftevent-unknown") == 0


def test_another_projects_job_has_no_events_to_show(
    ctx: ServiceContext, project: Project, other_project: Project
) -> None:
    job_id = add_job(ctx, project)
    log(ctx, job_id, "private")
    for read in (
        lambda: list_events(ctx, other_project, job_id, after=None, limit=10),
        lambda: events_since(ctx, other_project, job_id, 0),
        lambda: list_checkpoints(ctx, other_project, job_id, after=None, limit=10),
    ):
        with pytest.raises(NotFound) as raised:
            read()
        assert raised.value.param == "fine_tuning_job_id"


def test_an_event_or_checkpoint_of_another_job_is_no_cursor(
    ctx: ServiceContext, project: Project, other_project: Project
) -> None:
    job_id, sibling, foreign = add_job(ctx, project), add_job(ctx, project), add_job(ctx, other_project)
    log(ctx, job_id, "mine")
    add_checkpoint(ctx, job_id, 1)
    for other_job in (sibling, foreign):
        log(ctx, other_job, "theirs")
    their_events = [
        events_since(ctx, p, j, 0)[0][0][1].id for p, j in ((project, sibling), (other_project, foreign))
    ]
    their_checkpoint = add_checkpoint(ctx, sibling, 2)

    for event_id in their_events:
        with pytest.raises(NotFound) as raised:
            list_events(ctx, project, job_id, after=event_id, limit=10)
        assert (raised.value.param, raised.value.message) == (
            "after",
            f"No such FineTuningJobEvent object: {event_id}",
        )
    with pytest.raises(NotFound) as raised:
        list_checkpoints(ctx, project, job_id, after=their_checkpoint, limit=10)
    assert raised.value.param == "after"


@pytest.mark.parametrize("limit", [0, 1001])
def test_a_limit_out_of_range_is_refused(ctx: ServiceContext, project: Project, limit: int) -> None:
    job_id = add_job(ctx, project)
    with pytest.raises(InvalidRequest) as raised:
        list_events(ctx, project, job_id, after=None, limit=limit)
    assert raised.value.param == "limit"


def test_checkpoints_are_paged_newest_first_with_their_metrics(ctx: ServiceContext, project: Project) -> None:
    job_id = add_job(ctx, project)
    for step in (10, 20, 30):
        add_checkpoint(ctx, job_id, step)

    page = list_checkpoints(ctx, project, job_id, after=None, limit=2)

    assert [c.step_number for c in page.data] == [30, 20]
    assert (page.first_id, page.last_id, page.has_more) == ("ftckpt_30", "ftckpt_20", True)
    newest = page.data[0]
    assert newest.fine_tuned_model_checkpoint == "ft:openft-tiny:personal::abcd1234:ckpt-step-30"
    assert (newest.fine_tuning_job_id, newest.metrics) == (job_id, {"step": 30, "train_loss": 1 / 30})
    rest = list_checkpoints(ctx, project, job_id, after="ftckpt_20", limit=2)
    assert ([c.id for c in rest.data], rest.has_more, rest.first_id) == (["ftckpt_10"], False, "ftckpt_10")
    empty = list_checkpoints(ctx, project, add_job(ctx, project), after=None, limit=2)
    assert (empty.data, empty.first_id, empty.last_id, empty.has_more) == ([], None, None, False)
