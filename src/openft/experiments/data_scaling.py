"""The data-quantity experiment: train on nested subsets of a training file, score each on a test set.

    result = run_data_scaling(
        "openft-tiny", Path("train.jsonl"), Path("test.jsonl"), [0.25, 0.5, 1.0],
        work_dir=Path("runs/scaling"), models_dir=settings.models_dir,
    )
    print(result.estimate().sentence(result.points[-1].n_examples))

Every subset is trained with the same hyperparameters as given ("auto" is resolved for each subset as a
fine-tuning job on that file would resolve it, so a small subset gets the epochs OpenAI's rule gives it)
and the same seed, in this process, one after the other; each trained model answers the same test cases
greedily through the inference engine (as `openft eval` runs locally), and so does the untrained base
model as the starting point. Needs torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from openft.comparison.compare import ModelSummary, evaluate, summarize
from openft.comparison.local_runner import LocalRunner, local_engine, model_ref
from openft.comparison.metrics import default_metric_names
from openft.comparison.testset import TestCase, read_test_set
from openft.data.lines import BadLine, iter_lines, parse_json_line
from openft.experiments.scaling import ScalingPoint, ScalingResult, nested_subsets
from openft.train.config import SFTConfig
from openft.train.reporting import MemoryReporter
from openft.train.spec import BaseModelFacts, find_base_model, resolve_job

Progress = Callable[[str], None]


def run_data_scaling(
    base_model: str,
    training_file: Path,
    test_file: Path,
    fractions: Sequence[float],
    *,
    work_dir: Path,
    models_dir: Path,
    hyperparameters: dict[str, Any] | None = None,
    metric_names: Sequence[str] | None = None,
    seed: int = 0,
    max_test_examples: int | None = None,
    max_tokens: int | None = None,
    progress: Progress = lambda _text: None,
) -> ScalingResult:
    """Train one model per fraction (nested subsets of one seeded shuffle) and score each on the test set."""
    base = find_base_model(models_dir, base_model, directory_ok=True)
    examples = _training_lines(training_file)
    cases = read_test_set(test_file, max_examples=max_test_examples)
    names = list(metric_names) if metric_names else default_metric_names([c.reference for c in cases])

    progress(f"evaluating the base model {base.name} on {len(cases)} test examples")
    baseline = _score(base.path(), base.name, cases, names, max_tokens)
    points = []
    for fraction, subset in zip(fractions, nested_subsets(examples, fractions, seed), strict=True):
        run_dir = work_dir / f"fraction-{fraction:g}"
        config = _config(base, subset, run_dir, hyperparameters or {}, seed)
        progress(
            f"fraction {fraction:g}: training on {len(subset)} examples "
            f"({config.n_epochs} epochs, {config.method}, lr {config.learning_rate:g})"
        )
        final_path, n_steps = _train(config)
        progress(f"fraction {fraction:g}: evaluating")
        summary = _score(final_path, f"{base.name} on {len(subset)} examples", cases, names, max_tokens)
        points.append(
            ScalingPoint(
                fraction=fraction,
                n_examples=len(subset),
                n_epochs=config.n_epochs,
                n_steps=n_steps,
                scores=summary.means,
                mean_reference_loss=summary.mean_reference_loss,
            )
        )
    return ScalingResult(
        base_model=base.name,
        training_file=str(training_file),
        test_file=str(test_file),
        n_test_examples=len(cases),
        metric_names=names,
        baseline=baseline.means,
        baseline_reference_loss=baseline.mean_reference_loss,
        points=points,
    )


def _score(
    path: Path, label: str, cases: list[TestCase], names: list[str], max_tokens: int | None
) -> ModelSummary:
    # An engine per model: its weights are released before the next subset trains.
    with local_engine() as engine:
        runner = LocalRunner(model_ref(path, name=label), engine)
        return summarize(evaluate(cases, runner, names, max_tokens=max_tokens), names)


def _training_lines(path: Path) -> list[str]:
    """The file's examples as they are written, one per line; a line that is not JSON stops the experiment
    early, naming the line (the recipe would reject it anyway, after training the smaller subsets)."""
    lines: list[str] = []
    for line_no, text in iter_lines(path):
        problem = text if isinstance(text, BadLine) else parse_json_line(line_no, text)
        if isinstance(problem, BadLine):
            raise ValueError(f"{path}, line {line_no}: {problem.message}; fix or remove that line")
        assert isinstance(text, str)
        lines.append(text)
    if len(lines) < 2:
        raise ValueError(f"{path} has {len(lines)} examples; the experiment needs enough to split")
    return lines


def _config(
    base: BaseModelFacts, subset: list[str], run_dir: Path, hyperparameters: dict[str, Any], seed: int
) -> SFTConfig:
    run_dir.mkdir(parents=True, exist_ok=True)
    subset_file = run_dir / "train.jsonl"
    subset_file.write_text("".join(line + "\n" for line in subset), encoding="utf-8")
    return resolve_job(
        "supervised",
        hyperparameters,
        base=base,
        training_file=subset_file,
        validation_file=None,
        output_dir=run_dir / "run",
        seed=seed,
    )


def _train(config: SFTConfig) -> tuple[Path, int]:
    from openft.train.sft import train_sft  # torch: only when an experiment runs

    reporter = MemoryReporter()
    result = train_sft(config, reporter)
    if result.status != "succeeded" or result.final_path is None:
        problems = "; ".join(text for level, text in reporter.messages if level == "error")
        raise RuntimeError(f"training on {config.training_file} ended {result.status}: {problems}")
    return Path(result.final_path), len(reporter.steps)
