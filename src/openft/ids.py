"""New ids with OpenAI's prefixes (note the hyphen/underscore split) and `ft:` model names."""

from __future__ import annotations

import secrets
import string

_BASE62 = string.digits + string.ascii_letters


def random_base62(n_chars: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(n_chars))


def new_file_id() -> str:
    return "file-" + random_base62(22)


def new_upload_id() -> str:
    return "upload_" + random_base62(24)


def new_part_id() -> str:
    return "part_" + random_base62(24)


def new_job_id() -> str:
    return "ftjob-" + random_base62(24)


def new_event_id() -> str:
    return "ftevent-" + random_base62(24)


def new_checkpoint_id() -> str:
    return "ftckpt_" + random_base62(24)


def new_checkpoint_permission_id() -> str:
    return "cp_" + random_base62(24)


def new_project_id() -> str:
    return "proj_" + random_base62(24)


def new_api_key() -> str:
    return "sk-openft-" + random_base62(40)


def new_model_short_id() -> str:
    """The 8-character id segment of an `ft:` model name."""
    return random_base62(8)


def fine_tuned_model_name(base: str, project_slug: str, suffix: str | None, short_id: str) -> str:
    """`ft:{base}:{project}:{suffix}:{id}`; an empty suffix gives `::` as OpenAI does."""
    return f"ft:{base}:{project_slug}:{suffix or ''}:{short_id}"


def new_eval_id() -> str:
    """OpenAI's eval ids: `eval_` and 32 hex digits (as are runs' `evalrun_` and `outputitem_`)."""
    return "eval_" + secrets.token_hex(16)


def new_eval_run_id() -> str:
    return "evalrun_" + secrets.token_hex(16)


def new_output_item_id() -> str:
    return "outputitem_" + secrets.token_hex(16)
