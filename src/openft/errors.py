"""One exception family that maps onto OpenAI's error envelope.

`{"error": {"message", "type", "param", "code"}}` with every key present (null where unknown).
"""

from __future__ import annotations

from typing import Any


class OpenFTError(Exception):
    status_code = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def envelope(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(OpenFTError):
    status_code = 400


class AuthenticationFailed(OpenFTError):
    status_code = 401

    def __init__(self, message: str, *, code: str | None = "invalid_api_key") -> None:
        super().__init__(message, code=code)


class PermissionDenied(OpenFTError):
    """The caller may see the object but not do this to it (a model another project shared with it)."""

    status_code = 403


class NotFound(OpenFTError):
    status_code = 404


class RateLimited(OpenFTError):
    """Too many requests of one kind at once; OpenAI's 429 envelope (type "requests")."""

    status_code = 429
    error_type = "requests"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="rate_limit_exceeded")


class Unavailable(OpenFTError):
    """A request that is valid but cannot be served now (busy, or too slow); worth retrying later."""

    status_code = 503
    error_type = "server_error"


def no_such_object(kind: str, object_id: str, param: str = "id") -> NotFound:
    """OpenAI's wording for a missing object: `No such File object: file-abc`."""
    return NotFound(f"No such {kind} object: {object_id}", param=param)
