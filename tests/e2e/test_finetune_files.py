"""Fine-tune uploads are scanned on arrival: `processed` for each known format, `error` naming the line."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest
from e2e_data import (
    assert_file_object,
    chat_jsonl,
    chat_line,
    preference_line,
    prompt_completion_line,
)
from openai import OpenAI

if TYPE_CHECKING:
    from conftest import LiveServer

MB = 1024 * 1024


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(chat_jsonl(10), id="chat"),
        pytest.param(b"".join(prompt_completion_line(i) for i in range(10)), id="prompt-completion"),
        pytest.param(b"".join(preference_line(i) for i in range(10)), id="preference"),
        pytest.param(b"\xef\xbb\xbf" + chat_jsonl(2), id="utf8-bom"),
        pytest.param(chat_jsonl(3).replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(
            chat_line(0) + b"\n  \n" + chat_line(1).rstrip(b"\n"), id="blank-lines-no-final-newline"
        ),
    ],
)
def test_valid_training_files_are_processed(shared_client: OpenAI, body: bytes) -> None:
    created = shared_client.files.create(file=("train.jsonl", body), purpose="fine-tune")

    assert_file_object(created, filename="train.jsonl", purpose="fine-tune", n_bytes=len(body))
    assert (
        shared_client.files.wait_for_processing(created.id, poll_interval=0.01, max_wait_seconds=5) == created
    )
    assert shared_client.files.content(created.id).content == body


@pytest.mark.parametrize(
    ("body", "details_start", "details_contain"),
    [
        pytest.param(
            chat_jsonl(2) + b'{"messages": [\n',
            "line 3 is not valid JSON",
            "Each line must hold one complete JSON object",
            id="not-json",
        ),
        pytest.param(
            chat_jsonl(1) + b"\x00\x01\x02\xff\xfe binary junk\n",
            "line 2 contains a NUL byte",
            "binary file",
            id="binary",
        ),
        pytest.param(
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
            "line 1 ",
            "UTF-8",
            id="png-image",
        ),
        pytest.param(b"", "The file is empty", "one training example per line", id="empty"),
        pytest.param(
            b"\n \n\t\n", "The file is empty", "one training example per line", id="only-blank-lines"
        ),
        pytest.param(
            chat_jsonl(1) + b'{"prompt": "caf\xe9", "completion": "x"}\n',
            "line 2 is not valid UTF-8",
            "0xe9",
            id="invalid-utf8",
        ),
        pytest.param(
            chat_jsonl(2) + prompt_completion_line(0),
            "The file mixes formats: line 1 is chat messages but line 3 is prompt/completion pairs",
            "one format per file",
            id="mixed-formats",
        ),
        pytest.param(b"[1, 2, 3]\n", "line 1 is a JSON array, not an object", "one JSON object", id="array"),
        pytest.param(b'{"text": "hello"}\n', "line 1: Unexpected file format", '"text"', id="unknown-keys"),
        pytest.param(
            b'{"prompt": NaN, "completion": "x"}\n', "line 1 is not valid JSON", "NaN", id="nan-literal"
        ),
        pytest.param(
            b'{"messages": [{"role": "user", "content": "Hi"}, '
            b'{"role": "assistant", "content": "\\ud800"}]}\n',
            "line 1: 'messages[1].content' has an invalid character",
            "unpaired surrogate",
            id="lone-surrogate",
        ),
        # Lines Python itself cannot read: named in the user's terms, not Python's limits.
        pytest.param(
            chat_jsonl(2) + b'{"messages": [], "n": ' + b"7" * 5000 + b"}\n",
            "line 3: a number has too many digits",
            "write it as a string",
            id="huge-integer",
        ),
        pytest.param(
            chat_jsonl(2) + b"[" * 100_000 + b"]" * 100_000 + b"\n",
            "line 3: JSON nested too deeply",
            "only a few levels",
            id="deep-nesting",
        ),
    ],
)
def test_invalid_training_files_get_status_error_naming_the_line(
    shared_client: OpenAI, body: bytes, details_start: str, details_contain: str
) -> None:
    created = shared_client.files.create(file=("bad.jsonl", body), purpose="fine-tune")

    assert created.status_details is not None
    assert created.status_details.startswith(details_start), created.status_details
    assert details_contain in created.status_details
    for internal in ("sys.", "set_int_max_str_digits", "recursion", "Traceback", "Error:"):
        assert internal not in created.status_details, created.status_details
    assert_file_object(
        created,
        filename="bad.jsonl",
        purpose="fine-tune",
        n_bytes=len(body),
        status="error",
        status_details=created.status_details,
    )
    assert shared_client.files.retrieve(created.id) == created
    assert (
        shared_client.files.wait_for_processing(created.id, poll_interval=0.01, max_wait_seconds=5) == created
    )
    # The bytes are kept as sent, so the user can download what the server saw.
    assert shared_client.files.content(created.id).content == body


def test_other_purposes_are_not_scanned(shared_client: OpenAI) -> None:
    created = shared_client.files.create(file=("notes.jsonl", b"\x00 not json"), purpose="evals")

    assert (created.status, created.status_details) == ("processed", None)


# -- one 50 MB line: streamed from disk by the client, and the server's memory stays flat --


def write_one_long_line(path: Path, n_bytes: int) -> None:
    head, tail = b'{"messages": [{"role": "user", "content": "', b'"}]}\n'
    filler = b"x" * MB
    with path.open("wb") as handle:
        handle.write(head)
        remaining = n_bytes - len(head) - len(tail)
        while remaining > 0:
            handle.write(filler[: min(remaining, MB)])
            remaining -= MB
        handle.write(tail)


def multipart_from_file(path: Path, boundary: str) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    with path.open("rb") as handle:
        while chunk := handle.read(256 * 1024):
            yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


class PeakRss:
    """Samples this process's resident memory every few milliseconds while in the `with` block."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.baseline = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / MB


def test_a_50_mb_single_line_is_an_error_and_memory_stays_flat(
    shared_server: LiveServer, tmp_path: Path
) -> None:
    """The server runs in this process, so the process's RSS is the server's plus a streaming client."""
    path = tmp_path / "one-line.jsonl"
    write_one_long_line(path, 50 * MB)
    boundary = "openft-test-boundary-7d1f"
    with shared_server.http() as http:
        http.get("files", params={"limit": 1})  # warm the connection and the handlers
        with PeakRss() as rss:
            response = http.post(
                "files",
                content=multipart_from_file(path, boundary),
                headers={"content-type": f"multipart/form-data; boundary={boundary}"},
                timeout=120,
            )

    assert response.status_code == 200, response.text
    created = response.json()
    assert created["bytes"] == path.stat().st_size
    assert created["status"] == "error"
    assert created["status_details"].startswith("line 1 is longer than")
    # Reading the line whole would cost 50 MB of bytes plus the decoded text (measured: ~200 MB); the
    # scan holds at most its line limit (16 MiB) plus a read chunk, briefly twice while it grows, and the
    # allocator keeps some of that: bounded well below the whole-line cost.
    assert rss.growth_mb < 80, f"RSS grew by {rss.growth_mb:.0f} MB"
    assert shared_server.client().files.retrieve(created["id"]).status == "error"


def test_a_long_line_under_the_limit_is_processed(shared_client: OpenAI) -> None:
    long_line = b'{"prompt": "' + b"y" * (2 * MB) + b'", "completion": "z"}\n'
    body = prompt_completion_line(1) + long_line + prompt_completion_line(2)

    created = shared_client.files.create(file=("long.jsonl", body), purpose="fine-tune")

    assert (created.status, created.status_details, created.bytes) == ("processed", None, len(body))
    assert shared_client.files.content(created.id).content == body
