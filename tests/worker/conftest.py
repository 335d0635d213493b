"""Fixtures for the worker's tests: its jobs run on the session's built tiny model, as the job tests' do."""

from __future__ import annotations

from tests.jobs.conftest import tiny_model_dir  # the session's built tiny model

__all__ = ["tiny_model_dir"]
