"""Streaming multipart/form-data: the file part goes straight to a blob writer, never into memory.

Server memory stays flat whatever the upload size. Text fields are small and kept; the file part is
written chunk by chunk as the request body arrives. The writer is handed back uncommitted so the
handler can validate the other fields first and commit or abort.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect, Request

from openft.errors import InvalidRequest
from openft.services.files import BlobTooLarge, BlobWriter

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
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidRequest(
            "This endpoint expects a multipart/form-data body "
            "(Content-Type: multipart/form-data; boundary=...).",
            param=file_field,
        )
    form = StreamedForm()
    headers: dict[bytes, bytes] = {}
    header_field, header_value = bytearray(), bytearray()
    part = _Part()

    def on_part_begin() -> None:
        nonlocal part
        headers.clear()
        part = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        part.name = disposition.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = disposition.get(b"filename")
        part.filename = raw_filename.decode("utf-8", "replace") if raw_filename is not None else None
        if part.name == file_field and form.writer is None:
            part.writer = form.writer = new_writer()
            form.filename = part.filename or "upload"

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.writer is not None:
            if not form.too_large:
                try:
                    part.writer.write(data[start:end])
                except BlobTooLarge:
                    form.too_large = True
        elif len(part.text) + (end - start) <= MAX_TEXT_FIELD_BYTES:
            part.text.extend(data[start:end])
        else:
            raise InvalidRequest(f"Form field {part.name!r} is too long.", param=part.name)

    def on_part_end() -> None:
        if part.writer is None and part.name:
            try:
                form.fields[part.name] = part.text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidRequest(
                    f"Form field {part.name!r} is not valid UTF-8.", param=part.name
                ) from exc

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        if parser.state != MultipartState.END:  # a body cut short must not store a truncated file
            raise InvalidRequest(
                "Malformed multipart body: it ends before the closing boundary.", param=file_field
            )
    except (InvalidRequest, ClientDisconnect):
        form.discard()
        raise
    except Exception as exc:  # python_multipart's own errors for a malformed body
        form.discard()
        raise InvalidRequest(f"Malformed multipart body: {exc}", param=file_field) from exc
    except BaseException:  # cancelled (shutdown): nothing of this upload may remain
        form.discard()
        raise
    return form
