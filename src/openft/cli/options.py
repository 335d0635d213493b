"""Options shared by every command that works on the local data dir: one definition, one rule
(the option, else OPENFT_DATA_DIR, else ~/.openft)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="OPENFT_DATA_DIR",
        help="openft data dir: files, models, job outputs, the SQLite database (default: ~/.openft).",
    ),
]
