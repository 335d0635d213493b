"""Settings from the environment (OPENFT_*) and the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENFT_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path.home() / ".openft")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Largest single file accepted by POST /v1/files (OpenAI: 512 MB); larger ones go through /v1/uploads.
    max_file_bytes: int = 512 * 1024 * 1024
    max_upload_bytes: int = 8 * 1024 * 1024 * 1024
    max_part_bytes: int = 64 * 1024 * 1024
    upload_ttl_s: int = 3600
    # GET /v1/files/{id}/check?model=...: the tokenizer-backed check runs at most this long.
    file_check_timeout_s: float = 600.0
    # Webhook retries: the n-th failed attempt waits base * 2**(n-1) seconds, capped at an hour.
    webhook_retry_base_s: float = 5.0
    webhook_max_attempts: int = 8
    # Webhooks go to public addresses only; these host names and networks (CIDRs or single addresses,
    # comma-separated in the environment) are allowed too, for receivers on a private network.
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # One webhook POST (resolving, connecting, sending, reading the answer) takes at most this long.
    webhook_timeout_s: float = 10.0
    # POST /v1/webhook_endpoints/{id}/test calls of one project in flight at once; more get a 429.
    webhook_test_max_in_flight: int = 4
    # Local mode (loopback only) lets requests without a key act for the "personal" project. It ends
    # for good when the first key is created; on brings it back while no key is active.
    local_mode: bool = False
    # Processes per training run: above 1 the recipe runs under torchrun with DistributedDataParallel
    # (one process per GPU; gloo on CPU).
    train_processes: int = 1
    # Training precision: "auto" (bf16 mixed precision on GPUs and CPUs that multiply bf16 in hardware,
    # fp32 elsewhere), "bf16" or "fp32" (docs/training.md, "Precision").
    train_precision: Literal["auto", "bf16", "fp32"] = "auto"
    # A recipe process that reports nothing (no step, no message) for this long is taken for hung: it is
    # stopped and its job fails, so the queue moves on. Generous, since loading a large model from the
    # hub reports nothing while it downloads; 0 turns the check off.
    train_stall_timeout_s: float = 3600.0
    # Keep one recipe process ready with torch & co imported, so a job starts without waiting for them
    # (single-process training only; openft.worker.spare).
    train_spare_process: bool = True
    # The memory allocator of recipe processes: "auto" preloads jemalloc where the system has it
    # (Debian/Ubuntu: libjemalloc2), which kept SmolLM2 runs' peak memory 13-21 % lower than the C
    # library's allocator did; "system" keeps the C library's (docs/training.md, "Memory allocator").
    train_allocator: Literal["auto", "system"] = "auto"
    # A job that has a validation file and succeeds is evaluated on its first N validation examples,
    # base against fine-tuned (docs/evaluation.md); 0 turns that off. The evaluation is stopped (and
    # reported as failed) after job_eval_timeout_s.
    job_eval_max_examples: int = 50
    job_eval_timeout_s: float = 600.0
    # Inference (docs/inference.md). "local": transformers + PEFT in the server process; "vllm": a vLLM
    # OpenAI server at inference_vllm_url, started with LoRA enabled.
    inference_backend: str = "local"
    inference_device: str = "auto"
    inference_dtype: str = "auto"
    inference_max_loaded_models: int = 2
    inference_adapter_cache_mb: int = 1024
    inference_max_batch_sequences: int = 32
    inference_max_batch_tokens: int = 65536
    inference_cpu_threads: int | None = None
    # A request's generation stops (finish_reason "length") after this many seconds, so one request
    # to a model that never ends its answer cannot run for minutes; 0 turns the limit off.
    inference_max_request_s: float = 120.0
    # max_tokens of a chat request that gives none (bounded by what the context leaves).
    inference_default_max_tokens: int = 1024
    inference_vllm_url: str | None = None
    inference_vllm_api_key: str | None = None
    # Model graders (score_model, label_model) whose judge this server does not serve ask this
    # OpenAI-compatible server instead (e.g. https://api.openai.com/v1); None: such graders are a 400.
    # Its key: OPENFT_JUDGE_API_KEY in the environment (training processes read it from theirs).
    judge_base_url: str | None = None
    judge_api_key: str | None = None

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'openft.db'}"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def file_checks_dir(self) -> Path:
        """Kept tokenizer-backed reports of stored files (openft.services.file_checks)."""
        return self.data_dir / "file_checks"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"


def load_settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    """Settings from the environment, with command-line values on top."""
    updates: dict[str, object] = dict(overrides)
    if data_dir is not None:
        updates["data_dir"] = data_dir
    return Settings().model_copy(update=updates)
