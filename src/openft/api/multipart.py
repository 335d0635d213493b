"""Streaming multipart/form-data: the file part goes straight to a blob writer, never into memory.

Server memory stays flat whatever the upload size. Text fields are small and kept; the file part is
written chunk by chunk as the request body arrives. The writer is handed back uncommitted so the
handler can validate the other fields first and commit or abort.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect, Request

from openft.errors import InvalidRequest
from openft.services.files import BlobTooLarge, BlobWriter

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_TEXT_FIELD_BYTES = 64 * 1024


@dataclass
class StreamedForm:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    writer: BlobWriter | None = None
    too_large: bool = False

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.abort()


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    text: bytearray = field(default_factory=bytearray)
    writer: BlobWriter | None = None


async def stream_form(
    request: Request, *, file_field: str, new_writer: Callable[[], BlobWriter]
) -> StreamedForm:
    """Parse the body; the part named `file_field` is streamed into a writer from `new_writer`."""
    reader = _FormReader(file_field, new_writer)
    parser = MultipartParser(_boundary(request, file_field), reader.callbacks())
    try:
        await _feed(request, parser, file_field)
    except BaseException:  # a bad body, a client gone, or cancelled (shutdown): nothing of it may remain
        reader.form.discard()
        raise
    return reader.form


def _boundary(request: Request, file_field: str) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidRequest(
            "This endpoint expects a multipart/form-data body "
            "(Content-Type: multipart/form-data; boundary=...).",
            param=file_field,
        )
    return boundary


async def _feed(request: Request, parser: MultipartParser, file_field: str) -> None:
    """The whole body through the parser; a malformed or truncated body is a 400."""
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except (InvalidRequest, ClientDisconnect):
        raise
    except Exception as exc:  # python_multipart's own errors for a malformed body
        raise InvalidRequest(f"Malformed multipart body: {exc}", param=file_field) from exc
    if parser.state != MultipartState.END:  # a body cut short must not store a truncated file
        raise InvalidRequest(
            "Malformed multipart body: it ends before the closing boundary.", param=file_field
        )


class _FormReader:
    """The parser's callbacks: collects each part's headers, then its text or its file's bytes."""

    def __init__(self, file_field: str, new_writer: Callable[[], BlobWriter]) -> None:
        self.file_field = file_field
        self.new_writer = new_writer
        self.form = StreamedForm()
        self.part = _Part()
        self.headers: dict[bytes, bytes] = {}
        self.header_field = bytearray()
        self.header_value = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self.headers.clear()
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field.extend(data[start:end])

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value.extend(data[start:end])

    def on_header_end(self) -> None:
        self.headers[bytes(self.header_field).lower()] = bytes(self.header_value)
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        _, disposition = parse_options_header(self.headers.get(b"content-disposition", b""))
        part = self.part
        part.name = disposition.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = disposition.get(b"filename")
        part.filename = raw_filename.decode("utf-8", "replace") if raw_filename is not None else None
        if part.name == self.file_field and self.form.writer is None:
            part.writer = self.form.writer = self.new_writer()
            self.form.filename = part.filename or "upload"

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.writer is not None:
            self._write_file(data[start:end])
        elif len(self.part.text) + (end - start) <= MAX_TEXT_FIELD_BYTES:
            self.part.text.extend(data[start:end])
        else:
            raise InvalidRequest(f"Form field {self.part.name!r} is too long.", param=self.part.name)

    def _write_file(self, chunk: bytes) -> None:
        """Past the size limit the rest is read and dropped; the handler answers with the limit."""
        if self.form.too_large or self.part.writer is None:
            return
        try:
            self.part.writer.write(chunk)
        except BlobTooLarge:
            self.form.too_large = True

    def on_part_end(self) -> None:
        part = self.part
        if part.writer is not None or not part.name:
            return
        try:
            self.form.fields[part.name] = part.text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest(f"Form field {part.name!r} is not valid UTF-8.", param=part.name) from exc
