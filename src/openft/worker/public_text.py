"""What of a recipe's words may reach a client: ids and relative names, never a server path.

Events and job errors are read by API clients, who have no business knowing where the server keeps
its data or its Python. The worker passes every message it relays through `without_server_paths`:
paths under the job's directory, the data dir or the Python install become relative names, and any
other absolute path is cut to its last part. The full text (and the log's location) goes to the
server's log.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

import openft

# An absolute path: a "/" that does not continue a word, a number or another path ("and/or", "3/10",
# "http://host/..." stay as they are), followed by at least one named part.
_ABSOLUTE_PATH = re.compile(r"(?<![\w/.~:-])/(?:[^\s/'\"`,;()\[\]<>]+/)*([^\s/'\"`,;()\[\]<>]+)")


def python_roots() -> list[Path]:
    """Where this Python and its packages (openft's own source included) are installed."""
    paths = sysconfig.get_paths()
    roots = [paths[key] for key in ("purelib", "platlib", "stdlib", "platstdlib") if key in paths]
    roots += [sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(openft.__file__).parent.parent)]
    return [Path(root) for root in roots]


def without_server_paths(text: str, roots: Iterable[Path]) -> str:
    """`text` with each path under one of `roots` made relative to it, and any other absolute path
    shortened to its last part. Deeper roots first, so a job's directory wins over the data dir."""
    for root in sorted({str(r).rstrip("/") for r in roots if str(r).strip("/")}, key=len, reverse=True):
        text = text.replace(root + "/", "")
        text = re.sub(re.escape(root) + r"(?![\w.-])", ".", text)
    return _ABSOLUTE_PATH.sub(lambda match: match.group(1), text)
