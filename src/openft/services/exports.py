"""Model export (an openft extension): a project's fine-tuned model or checkpoint as files to take away.

The model resolves exactly as for chat (`inference.resolve_model`), so another project's model is a
404 and an unfinished one is "not ready". The API writes the export into a scratch directory of the
data dir and streams it as one tar archive, deleting the directory when the stream ends; the CLI
writes it where it is told.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from openft.errors import InvalidRequest, NotFound, Unavailable
from openft.export.check import CheckResult, check_export
from openft.export.run import export_model
from openft.export.source import ExportRequest, ExportSource, check_format_fits, checked_request, source_of
from openft.models.catalog import UnknownModelError
from openft.services.auth import find_project
from openft.services.base_models import catalog
from openft.services.context import Project, ServiceContext
from openft.services.inference import resolve_model

EXPORTS_DIR = "exports"
CHUNK_BYTES = 1 << 20
STALE_AFTER_S = 24 * 3600
_BLOCK = tarfile.BLOCKSIZE
# One export at a time per server: a merge holds a float32 copy of the model in memory.
_exporting = threading.Lock()


@dataclass(frozen=True)
class Archive:
    """A finished export as a tar stream: `chunks()` yields it once and then deletes the files."""

    file_name: str
    size: int  # bytes of the whole stream
    work_dir: Path
    members: list[tuple[bytes, Path]]  # (tar header, file)
    check: str | None = None  # "passed" or "failed" when the export was checked (check.json inside)

    def chunks(self) -> Iterator[bytes]:
        try:
            for header, path in self.members:
                yield header
                with path.open("rb") as file:
                    while chunk := file.read(CHUNK_BYTES):
                        yield chunk
                yield b"\0" * _padding(path.stat().st_size)
            yield b"\0" * (2 * _BLOCK)  # the end-of-archive marker
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)


def fine_tuned_source(ctx: ServiceContext, project: Project, name: str) -> ExportSource:
    """The project's fine-tuned model or checkpoint `name`, as the engine would serve it."""
    if not name.startswith("ft:"):
        try:
            catalog(ctx).get(name)
        except UnknownModelError:
            pass
        else:
            raise InvalidRequest(
                f"`{name}` is a base model: export writes fine-tuned models (ft:...) and their checkpoints.",
                param="model",
            )
    model = resolve_model(ctx, project, name)
    return source_of(model, fallback_base_name=name.split(":")[1] if ":" in name else name)


def source_by_name(ctx: ServiceContext, name: str) -> ExportSource:
    """For the CLI on the server's machine: the project is the one the `ft:` name says."""
    parts = name.split(":")
    if len(parts) < 5 or parts[0] != "ft":
        raise InvalidRequest(
            f"{name!r} is not a fine-tuned model name (ft:BASE:PROJECT:SUFFIX:ID, or a checkpoint's "
            "ft:...:ckpt-step-N).",
            param="model",
        )
    project = find_project(ctx, parts[2])
    if project is None:
        raise NotFound(f"The model `{name}` does not exist: there is no project {parts[2]!r}.", param="model")
    return fine_tuned_source(ctx, project, name)


def base_description(ctx: ServiceContext, base_name: str) -> str:
    try:
        return catalog(ctx).get(base_name).description
    except UnknownModelError:
        return "a base model of the server that trained it"


def export_archive(
    ctx: ServiceContext,
    project: Project,
    name: str,
    format: str | None,
    gguf_type: str | None = None,
    dtype: str | None = None,
    check: bool = False,
) -> Archive:
    """Export into a scratch directory and describe the tar stream of it (errors before any byte).
    With `check`, the export's greedy answers are compared with the served model's first, as
    `openft export` does, and the comparison travels in the archive as check.json."""
    if not format:
        raise InvalidRequest("Missing required parameter: 'format' (peft, merged or gguf).", param="format")
    request = checked_request(format, gguf_type, dtype)
    source = fine_tuned_source(ctx, project, name)
    check_format_fits(source, request)
    if not _exporting.acquire(blocking=False):
        raise Unavailable("Another model export is running on this server; try again when it has finished.")
    try:
        return _archive(ctx, source, request, check)
    finally:
        _exporting.release()


def _archive(ctx: ServiceContext, source: ExportSource, request: ExportRequest, check: bool) -> Archive:
    scratch = ctx.settings.data_dir / EXPORTS_DIR
    scratch.mkdir(parents=True, exist_ok=True)
    _sweep(scratch)
    work_dir = Path(tempfile.mkdtemp(prefix="export-", dir=scratch))
    folder = archive_folder(source.name, request)
    try:
        result = export_model(
            source, request, work_dir / folder, base_description=base_description(ctx, source.base_name)
        )
        files = list(result.files)
        checked = check_export(source, request.format, work_dir / folder) if check else None
        if checked is not None:
            files.append(_write_check(checked, work_dir / folder / "check.json"))
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    members = [(_header(f"{folder}/{path.name}", path), path) for path in files]
    size = sum(len(h) + p.stat().st_size + _padding(p.stat().st_size) for h, p in members) + 2 * _BLOCK
    verdict = None if checked is None else ("passed" if checked.passed else "failed")
    return Archive(f"{folder}.tar", size, work_dir, members, verdict)


def _write_check(checked: CheckResult, path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "format": checked.format,
                "loaded_with": checked.loaded_with,
                "passed": checked.passed,
                "answers_identical": f"{checked.n_agree}/{len(checked.rows)}",
                "token_agreement": round(checked.token_agreement, 4),
                "prompts": [
                    {
                        "prompt": row.prompt,
                        "served": row.served,
                        "exported": row.exported,
                        "token_agreement": round(row.token_agreement, 4),
                    }
                    for row in checked.rows
                ],
            },
            indent=2,
        )
    )
    return path


def _sweep(scratch: Path) -> None:
    """Remove what streams that never finished (a client that went away) left behind a day ago."""
    for stale in scratch.iterdir():
        if stale.is_dir() and time.time() - stale.stat().st_mtime > STALE_AFTER_S:
            shutil.rmtree(stale, ignore_errors=True)


def archive_folder(model_name: str, request: ExportRequest) -> str:
    """The archive's one top-level folder: the model's name made file-safe, and the format."""
    stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in model_name).strip("-.")
    kind = f"gguf-{request.gguf_type}" if request.format == "gguf" else request.format
    return f"{stem}-{kind}"


def _header(name: str, path: Path) -> bytes:
    info = tarfile.TarInfo(name)
    stat = path.stat()
    info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _padding(size: int) -> int:
    return -size % _BLOCK
