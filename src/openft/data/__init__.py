"""openft.data: training-data formats, the checker, token counts and loss masks, and the data lint.

Pure Python plus a tokenizer object handed in by the caller; nothing else from openft is imported.
"""

from openft.data.check import check_file
from openft.data.epochs import TrainingEstimate, auto_epochs, estimate_training
from openft.data.formats import FileFormat, detect_format
from openft.data.issues import ERROR_CODES, Issue, LintFinding
from openft.data.lint_features import LintTable
from openft.data.report import (
    BlockingError,
    CheckReport,
    ErrorClass,
    FileReport,
    MaskPreview,
    MaskSpan,
    TokenStats,
)
from openft.data.scan import FileScan, scan_jsonl
from openft.data.split import SplitResult, split_file
from openft.data.stats import Distribution

__all__ = [
    "ERROR_CODES",
    "BlockingError",
    "CheckReport",
    "Distribution",
    "ErrorClass",
    "FileFormat",
    "FileReport",
    "FileScan",
    "Issue",
    "LintFinding",
    "LintTable",
    "MaskPreview",
    "MaskSpan",
    "SplitResult",
    "TokenStats",
    "TrainingEstimate",
    "auto_epochs",
    "check_file",
    "detect_format",
    "estimate_training",
    "scan_jsonl",
    "split_file",
]
