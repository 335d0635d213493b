"""METEOR for the `text_similarity` grader: NLTK's implementation (Banerjee & Lavie, 2005: unigram matches
by exact form, Porter stem, then WordNet synonym; F-mean with alpha 0.9 and a fragmentation penalty) on
the same lower-cased words as the other word metrics.

Its synonyms need WordNet 3.0's database files, which no PyPI package carries. openft reads them from
`OPENFT_WORDNET_DIR`, from NLTK's data path (`nltk.download("wordnet")`), or from Debian's `wordnet-base`
package (/usr/share/wordnet); without them a `meteor` grader is refused when it is validated, never
scored without its synonyms.
"""

from __future__ import annotations

import functools
import io
import os
import threading
import warnings
from pathlib import Path
from typing import Any

WORDNET_DIR_ENV = "OPENFT_WORDNET_DIR"
DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")
INSTALL_HINT = (
    "install WordNet 3.0's database (`apt-get install wordnet-base`, or "
    "`python -m nltk.downloader wordnet`) or point OPENFT_WORDNET_DIR at its directory"
)
# The files NLTK's reader opens; Debian's package lacks only `lexnames`, whose contents WordNet 3.0 fixes
# (lexicographer file number, name, syntactic category): the reader is given them from here.
_WORDNET_FILES = ("data.noun", "index.noun", "data.verb", "index.verb", "data.adj", "index.adj")
_LEXNAMES = (
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
)
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


class WordNetUnavailable(Exception):
    """No WordNet database was found (or NLTK is missing)."""


def available() -> bool:
    """Whether NLTK and a WordNet database are installed (the database is read on first use)."""
    try:
        import nltk  # noqa: F401

        _database_dir()
    except (ImportError, WordNetUnavailable):
        return False
    return True


def meteor(output_words: list[str], reference_words: list[str]) -> float:
    from nltk.translate.meteor_score import single_meteor_score

    with _LOCK:  # NLTK's reader loads its indexes lazily and is not safe to share while it does
        return float(single_meteor_score(reference_words, output_words, wordnet=_wordnet()))


_LOCK = threading.Lock()


@functools.cache
def _wordnet() -> Any:
    try:
        import nltk.data
        from nltk.corpus.reader.wordnet import WordNetCorpusReader
    except ImportError:
        raise WordNetUnavailable("the nltk package is not installed") from None

    lexnames = "".join(
        f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(_LEXNAMES)
    )

    class Reader(WordNetCorpusReader):  # type: ignore[misc]
        def open(self, file: str) -> Any:
            if file == "lexnames" and not (database / "lexnames").is_file():
                return io.StringIO(lexnames)
            return super().open(file)

        def map_wn(self, version: str = "wordnet") -> Any:
            return None  # the mapping to other WordNet versions serves multilingual data, unused here

    database = _database_dir().resolve()
    if str(database) not in nltk.data.path:  # NLTK reads corpora only below its data path's roots
        nltk.data.path.append(str(database))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "multilingual functions are not available"
        return Reader(str(database), None)


def _database_dir() -> Path:
    if os.environ.get(WORDNET_DIR_ENV):  # the operator's choice, and then the only place looked at
        candidates = [Path(os.environ[WORDNET_DIR_ENV])]
    else:
        import nltk.data

        candidates = [Path(p) / "corpora" / "wordnet" for p in nltk.data.path if isinstance(p, str)]
        candidates.append(DEBIAN_WORDNET_DIR)
    for directory in candidates:
        if all((directory / name).is_file() for name in _WORDNET_FILES):
            return directory
    raise WordNetUnavailable("no WordNet database was found")
