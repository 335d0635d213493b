"""The pieces of `openft.cli.client` that need no server: the SSE parser and the error message."""

from __future__ import annotations

import httpx2  # the SDK's HTTP library, whose objects its exceptions carry
import openai

from openft.cli.client import server_message, sse_messages


def test_sse_messages_joins_data_lines_and_skips_comments_and_hints() -> None:
    lines = [": keep-alive", "retry: 1000", "", "id: e1", "event: message", 'data: {"a":', "data: 1}", ""]
    lines += ["event: end", 'data: {"status": "succeeded"}', "", "data: cut off"]
    assert list(sse_messages(lines)) == [("message", '{"a":\n1}'), ("end", '{"status": "succeeded"}')]


def test_server_message_is_the_envelopes_message_not_the_sdks_summary() -> None:
    request = httpx2.Request("GET", "http://127.0.0.1/v1/fine_tuning/jobs/ftjob-x")
    body = {"message": "No such FineTuningJob object: ftjob-x", "type": "invalid_request_error"}
    missing = openai.NotFoundError(
        "Error code: 404 - {...}", response=httpx2.Response(404, request=request), body=body
    )
    assert server_message(missing) == "No such FineTuningJob object: ftjob-x"
    gateway = openai.InternalServerError(
        "Error code: 502", response=httpx2.Response(502, request=request), body="x"
    )
    assert server_message(gateway) == "Error code: 502"
