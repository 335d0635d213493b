"""Write one export: the format's files into a new directory, checked before it counts as done."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from openft.export.source import ExportRequest, ExportSource, check_format_fits


@dataclass(frozen=True)
class ExportResult:
    out_dir: Path
    files: list[Path]
    seconds: float
    notes: tuple[str, ...] = ()  # what the user should know about the files (shown by the CLI)


def export_model(
    source: ExportSource, request: ExportRequest, out_dir: Path, *, base_description: str
) -> ExportResult:
    """Export into `out_dir`, which must not exist or be empty; on failure nothing is left behind."""
    check_format_fits(source, request)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} already exists and is not an empty directory")
    created = not out_dir.exists()
    started = time.perf_counter()
    try:
        files = _write(source, request, out_dir, base_description)
    except BaseException:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    return ExportResult(out_dir=out_dir, files=files, seconds=seconds, notes=_notes(source, request))


def _notes(source: ExportSource, request: ExportRequest) -> tuple[str, ...]:
    if request.format != "gguf":
        return ()
    from openft.export.gguf import gguf_notes

    return gguf_notes(source)


def _write(source: ExportSource, request: ExportRequest, out_dir: Path, base_description: str) -> list[Path]:
    # Each format's module imports torch: loaded only when an export runs.
    if request.format == "peft":
        from openft.export.peft import export_peft

        return export_peft(source, out_dir, base_description)
    if request.format == "merged":
        from openft.export.merged import export_merged

        return export_merged(source, out_dir, request.dtype)
    from openft.export.gguf import export_gguf

    return export_gguf(source, out_dir, request.gguf_type)
