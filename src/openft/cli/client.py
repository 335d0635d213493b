"""How `openft` commands reach a server: the official SDK client, API errors as one-line messages, and a
job's event feed (the SSE extension, resumed after a dropped connection, else polling `list_events`).

`openai` and `httpx` are imported inside functions: `openft serve` imports this module through the CLI
and must not pay for them at start-up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from openft.schemas.jobs import TERMINAL_STATUSES

if TYPE_CHECKING:
    import httpx
    from openai import OpenAI
    from openai.types.fine_tuning import FineTuningJobEvent

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
# The server sends nothing while a job waits in the queue; reconnecting after a quiet minute also
# notices a connection that died without a word.
STREAM_READ_TIMEOUT_S = 60.0
MAX_RECONNECTS = 8  # consecutive failed connections (about 30 s with the backoff) before giving up
POLL_INTERVAL_S = 1.0

BaseUrl = Annotated[
    str, typer.Option("--base-url", envvar="OPENAI_BASE_URL", help="The openft server's API root.")
]
ApiKey = Annotated[
    str, typer.Option("--api-key", envvar="OPENAI_API_KEY", help="API key (any value in local mode).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the raw API objects as JSON.")]

err_console = Console(stderr=True, highlight=False)


class CliError(Exception):
    """A failure to report as one line and exit 1."""


def make_client(base_url: str, api_key: str) -> OpenAI:
    from openai import OpenAI

    return OpenAI(base_url=base_url, api_key=api_key)


def fail(message: str) -> NoReturn:
    err_console.print(f"[red]Error:[/red] {escape(message)}")
    raise typer.Exit(code=1)


@contextmanager
def reported_errors(base_url: str) -> Iterator[None]:
    """API errors become the server's own message and exit status 1, never a traceback."""
    import openai

    try:
        yield
    except openai.APIStatusError as exc:
        fail(server_message(exc))
    except openai.APIConnectionError as exc:
        fail(f"could not reach the openft server at {base_url} ({exc.message}); is `openft serve` running?")
    except CliError as exc:
        fail(str(exc))


@contextmanager
def connected(base_url: str, api_key: str) -> Iterator[OpenAI]:
    """An SDK client for one command, whose API errors end the command with the server's message."""
    with reported_errors(base_url):
        yield make_client(base_url, api_key)


def server_message(exc: Exception) -> str:
    """The `message` of OpenAI's error envelope, which the SDK keeps as the exception's body."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return str(getattr(exc, "message", exc))


class EventFeed:
    """A job's events, oldest first, until the job ends. Remembers the last event it handed out, so a
    dropped stream resumes (Last-Event-ID) and a switch to polling repeats nothing."""

    def __init__(
        self, client: OpenAI, job_id: str, *, stream: bool = True, poll_interval_s: float = POLL_INTERVAL_S
    ) -> None:
        self.client = client
        self.job_id = job_id
        self.stream = stream
        self.poll_interval_s = poll_interval_s
        self.last_event_id: str | None = None

    def __iter__(self) -> Iterator[FineTuningJobEvent]:
        stream = self._stream() if self.stream else None
        if stream is not None:
            yield from stream
            return
        yield from self._poll()

    def _hand_out(self, event: FineTuningJobEvent) -> FineTuningJobEvent:
        self.last_event_id = event.id
        return event

    def _stream(self) -> Iterator[FineTuningJobEvent] | None:
        """The SSE stream, or None when the server does not offer it (a plain list, or an error answer)."""
        import httpx

        http = httpx.Client(
            headers={"authorization": f"Bearer {self.client.api_key}"},
            timeout=httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT_S),
        )
        url = f"{str(self.client.base_url).rstrip('/')}/fine_tuning/jobs/{self.job_id}/events"
        try:
            first = self._connect(http, url)
        except httpx.TransportError:
            first = None  # polling goes through the SDK, which reports a server that is gone
        if first is None:
            http.close()
            return None
        return self._read_stream(http, url, first)

    def _connect(self, http: httpx.Client, url: str) -> httpx.Response | None:
        headers = {"accept": "text/event-stream"}
        if self.last_event_id:
            headers["last-event-id"] = self.last_event_id
        request = http.build_request("GET", url, params={"stream": "true"}, headers=headers)
        response = http.send(request, stream=True)
        if response.status_code == 200 and response.headers.get("content-type", "").startswith(
            "text/event-stream"
        ):
            return response
        response.close()
        if response.status_code >= 500:
            raise httpx.RemoteProtocolError(f"server answered {response.status_code}", request=request)
        return None

    def _read_stream(
        self, http: httpx.Client, url: str, response: httpx.Response
    ) -> Iterator[FineTuningJobEvent]:
        import httpx
        from openai.types.fine_tuning import FineTuningJobEvent

        failures = 0
        try:
            while True:
                alive, error = False, "it closed"
                try:
                    for name, data in sse_messages(response.iter_lines()):
                        if name == "end":
                            return
                        alive = True
                        yield self._hand_out(FineTuningJobEvent.model_validate(json.loads(data)))
                except httpx.ReadTimeout:
                    alive = True  # quiet (a job waiting in the queue), not broken: reconnect
                except httpx.TransportError as exc:
                    error = str(exc) or type(exc).__name__
                finally:
                    response.close()
                # Closed without its `end` event (a restart, a proxy, a network cut): resume after the
                # last event handed out, backing off while connections keep failing.
                failures = 0 if alive else failures + 1
                if failures > MAX_RECONNECTS:
                    raise CliError(f"lost the event stream of {self.job_id}: {error}")
                time.sleep(min(0.25 * 2**failures, 5.0) if failures else 0.0)
                resumed = self._reconnect(http, url)
                if resumed is None:
                    yield from self._poll()
                    return
                response = resumed
        finally:
            http.close()

    def _reconnect(self, http: httpx.Client, url: str) -> httpx.Response | None:
        import httpx

        for attempt in range(MAX_RECONNECTS):
            try:
                return self._connect(http, url)
            except httpx.TransportError:
                time.sleep(min(0.25 * 2 ** (attempt + 1), 5.0))
        raise CliError(f"lost the event stream of {self.job_id}: the server stopped answering")

    def _poll(self) -> Iterator[FineTuningJobEvent]:
        jobs = self.client.fine_tuning.jobs
        while True:
            # Status first: events are written with (or before) the change to a final status, so
            # reading them afterwards cannot miss the last ones.
            status = jobs.retrieve(self.job_id).status
            for event in self._new_events():
                yield self._hand_out(event)
            if status in TERMINAL_STATUSES:
                return
            time.sleep(self.poll_interval_s)

    def poll_once(self) -> list[FineTuningJobEvent]:
        """The events written since the last one handed out, oldest first (one request or a few)."""
        return [self._hand_out(event) for event in self._new_events()]

    def _new_events(self) -> list[FineTuningJobEvent]:
        fresh: list[FineTuningJobEvent] = []
        # Newest first, page after page, back to the last event already handed out.
        for event in self.client.fine_tuning.jobs.list_events(self.job_id, limit=100):
            if event.id == self.last_event_id:
                break
            fresh.append(event)
        return fresh[::-1]


def sse_messages(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(event name, data) for each Server-Sent Events message; comments and retry hints are skipped."""
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", list[str]()
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
