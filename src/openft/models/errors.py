"""What the catalog raises. Each is an openft error (it maps onto OpenAI's error envelope) and also the
built-in exception that callers outside the service would expect."""

from __future__ import annotations

from openft.errors import InvalidRequest, NotFound


class UnknownModelError(NotFound, KeyError):
    """No model of that name; also a KeyError, so `except KeyError` callers keep working."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"Model '{name}' is not in the catalog. Known models: {', '.join(known)}. "
            "Register a local model directory with `openft models add NAME PATH`, "
            "or use a Hugging Face hub id such as `org/model`.",
            param="model",
            code="model_not_found",
        )
        self.name = name

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return self.message


class InvalidModelError(InvalidRequest, ValueError):
    """A registration that cannot be accepted: bad name, or a directory that is not a model."""


class ModelUnavailableError(InvalidRequest):
    """The model is known but its files cannot be reached from this machine."""

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model", code="model_not_available")
