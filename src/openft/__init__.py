"""openft: a self-hosted, OpenAI-compatible fine-tuning service for open-weights models."""

__version__ = "0.1.0"
