"""The local runner: a model loaded in this process with torch, answering greedily, scoring the reference.

A model is a directory: a base model, an `openft train` output (its `final/`), a checkpoint, a LoRA
adapter (applied to the base its `base_model.json` names, and merged for speed) or a full fine-tune.
Prompts are rendered by `openft.data.render`, the function training uses, and an answer ends at the
template's end-of-turn token. The reference loss uses training's loss mask on the final answer (its
content and end-of-turn token), so it is the validation loss training would report for that answer.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from openft.data.render import render_chat, render_prompt, stop_token_ids
from openft.evals.runners import Answer, default_max_tokens
from openft.evals.testset import TestCase
from openft.inference.weights import resolve_device
from openft.models.catalog import Catalog
from openft.train.adapters import load_for_inference
from openft.train.spec import STEP_PREFIX, RunLayout

# Prompts generated together; sorted by length first, so that little of a batch is padding.
GENERATION_BATCH_SIZE = 16


def locate_model(spec: str, models_dir: Path) -> Path:
    """The directory a model spec means: a directory (an `openft train` output means its `final/`) or a
    catalog name (built-in models are built on first use). Raises FileNotFoundError or UnknownModelError."""
    path = Path(spec).expanduser()
    if path.is_dir():
        run = RunLayout(path)
        if run.final_dir.is_dir():
            return run.final_dir.resolve()
        if run.checkpoints_dir.is_dir() and not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} has no final/ model (the run did not finish): pass one of its checkpoints, "
                f"such as {run.checkpoints_dir / (STEP_PREFIX + 'N')}"
            )
        return path.resolve()
    if spec.startswith(("/", ".", "~")):
        raise FileNotFoundError(f"{spec} is not a directory")
    return Catalog(models_dir).resolve_path(spec)


class LocalRunner:
    """Loads the model on first use; `close()` frees it (evaluate one model, close, then the next)."""

    def __init__(self, model_path: Path, *, label: str | None = None, device: str = "auto") -> None:
        self.model_path = model_path
        self.label = label or str(model_path)
        self.device = resolve_device(device)
        self._model: Any = None
        self._tokenizer: Any = None

    def answer(self, cases: Sequence[TestCase], *, max_tokens: int | None = None) -> list[Answer]:
        model, tokenizer = self._load()
        prompts = [self._prompt_ids(case) for case in cases]
        budgets = [max_tokens or default_max_tokens(self._n_reference_tokens(case)) for case in cases]
        texts = _generate_all(model, tokenizer, prompts, budgets, self.device)
        losses = [self.reference_loss(case) for case in cases]
        return [Answer(text, loss, truncated) for (text, truncated), loss in zip(texts, losses, strict=True)]

    @torch.inference_mode()
    def reference_loss(self, case: TestCase) -> float | None:
        """Mean token cross-entropy of the reference answer given the prompt (None: nothing to score)."""
        model = self._load()[0]
        input_ids, loss_mask = self._scored_tokens(case)
        targets = [i for i in range(1, len(input_ids)) if loss_mask[i]]
        if not targets:
            return None
        ids = torch.tensor([input_ids], device=self.device)
        # Only the logits that predict a scored token: position i - 1 predicts token i.
        keep = torch.tensor([i - 1 for i in targets], device=self.device)
        logits = model(input_ids=ids, logits_to_keep=keep, use_cache=False).logits[0].float()
        loss = F.cross_entropy(logits, torch.tensor([input_ids[i] for i in targets], device=self.device))
        return float(loss.item())

    def close(self) -> None:
        self._model = self._tokenizer = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            self._model, self._tokenizer = load_for_inference(
                self.model_path, device=str(self.device), merge=True
            )
        return self._model, self._tokenizer

    def _prompt_ids(self, case: TestCase) -> list[int]:
        tokenizer = self._load()[1]
        if case.prompt_text is not None:
            return list(tokenizer.encode(case.prompt_text, add_special_tokens=False))
        return render_prompt(tokenizer, case.messages, case.tools)

    def _n_reference_tokens(self, case: TestCase) -> int:
        return len(self._load()[1].encode(case.reference, add_special_tokens=False))

    def _scored_tokens(self, case: TestCase) -> tuple[list[int], list[int]]:
        """The prompt followed by the reference, and 1 on the reference tokens that training scores."""
        tokenizer = self._load()[1]
        if case.prompt_text is not None:
            # As openft.data.tokens counts a prompt/completion example: the completion and end-of-text.
            prompt = self._prompt_ids(case)
            eos = [tokenizer.eos_token_id] if isinstance(tokenizer.eos_token_id, int) else []
            answer = list(tokenizer.encode(case.reference, add_special_tokens=False)) + eos
            return prompt + answer, [0] * len(prompt) + [1] * len(answer)
        reference = {"role": "assistant", "content": case.reference}
        rendered = render_chat(tokenizer, [*case.messages, reference], case.tools)
        # Earlier assistant turns are context here: only the final answer (after the prompt) is scored.
        n_prompt = len(self._prompt_ids(case))
        return rendered.input_ids, [0] * n_prompt + rendered.loss_mask[n_prompt:]


def _generate_all(
    model: Any, tokenizer: Any, prompts: list[list[int]], budgets: list[int], device: torch.device
) -> list[tuple[str, bool]]:
    """(answer text, hit its budget) per prompt, in the order given."""
    stops = stop_token_ids(tokenizer)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: dict[int, tuple[str, bool]] = {}
    for start in range(0, len(order), GENERATION_BATCH_SIZE):
        batch = order[start : start + GENERATION_BATCH_SIZE]
        outputs = _generate_batch(
            model, [prompts[i] for i in batch], max(budgets[i] for i in batch), stops, device
        )
        for i, new_ids in zip(batch, outputs, strict=True):
            results[i] = _answer_text(tokenizer, new_ids[: budgets[i]], stops, budgets[i])
    return [results[i] for i in range(len(prompts))]


@torch.inference_mode()
def _generate_batch(
    model: Any, prompts: list[list[int]], max_new_tokens: int, stops: list[int], device: torch.device
) -> list[list[int]]:
    # Left padding: every prompt ends in the last column, where generation continues.
    width = max(len(prompt) for prompt in prompts)
    input_ids = torch.full((len(prompts), width), stops[0], dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        attention_mask[row, width - len(prompt) :] = 1
    output = model.generate(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=stops,
        pad_token_id=stops[0],
    )
    return [row[width:].tolist() for row in output]


def _answer_text(tokenizer: Any, new_ids: list[int], stops: list[int], budget: int) -> tuple[str, bool]:
    for i, token in enumerate(new_ids):
        if token in stops:
            return str(tokenizer.decode(new_ids[:i], skip_special_tokens=True)), False
    return str(tokenizer.decode(new_ids, skip_special_tokens=True)), len(new_ids) >= budget
