"""`openft migrate` between two live openft servers: the source's fine-tune files and jobs arrive on the
target once, with the same hyperparameters, suffix, seed and metadata; a dry run writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from click.testing import Result
from openai import OpenAI
from typer.testing import CliRunner

from openft.cli.main import app
from openft.cli.migration import checked_hyperparameters, mapped_model, parse_model_map

if TYPE_CHECKING:
    from tests.conftest import LiveServer, ServerFactory

CHAT = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "%d"}]}\n'


def run_migrate(source: LiveServer, target: LiveServer, state: Path, *extra: str) -> Result:
    env = {"OPENFT_MIGRATE_FROM_API_KEY": "source-key", "OPENAI_API_KEY": "target-key", "COLUMNS": "250"}
    args = ["migrate", "--from-base-url", source.base_url, "--base-url", target.base_url]
    args += ["--model-map", "openft-tiny=openft-tiny", "--state", str(state), *extra]
    return CliRunner().invoke(app, args, env=env)


def fill_source(client: OpenAI) -> dict[str, str]:
    """Three fine-tune files (two with the same bytes), a vision file and three jobs; their ids."""
    made = {
        "a": client.files.create(file=("a.jsonl", CHAT % 1 * 10), purpose="fine-tune").id,
        "b": client.files.create(file=("b.jsonl", CHAT % 2 * 10), purpose="fine-tune").id,
        "same_as_a": client.files.create(file=("copy.jsonl", CHAT % 1 * 10), purpose="fine-tune").id,
    }
    client.files.create(file=("x.png", b"png"), purpose="vision")
    made["supervised"] = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=made["a"],
        validation_file=made["b"],
        suffix="support",
        seed=7,
        metadata={"team": "search"},
        hyperparameters={"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.5},
    ).id
    made["dpo"] = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=made["same_as_a"],
        method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2, "n_epochs": 1}}},
    ).id
    made["unmapped"] = client.fine_tuning.jobs.create(model="openft-small", training_file=made["b"]).id
    return made


def test_migrate_copies_once_and_a_dry_run_writes_nothing(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    source, target = server_factory(), server_factory()
    src, dst = source.client(), target.client()
    made = fill_source(src)
    state = tmp_path / "state.json"

    dry = run_migrate(source, target, state, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Would copy 2 file(s) and 2 job(s); 1 job(s) skipped." in dry.output
    assert "no --model-map entry for openft-small" in dry.output
    assert not state.exists()
    assert dst.files.list().data == [] and dst.fine_tuning.jobs.list().data == []

    done = run_migrate(source, target, state)
    assert done.exit_code == 0, done.output
    assert "Copied 2 file(s) and 2 job(s); 1 job(s) skipped." in done.output
    ledger = json.loads(state.read_text())
    assert set(ledger["files"]) == {made["a"], made["b"], made["same_as_a"]}
    assert ledger["files"][made["same_as_a"]] == ledger["files"][made["a"]]  # one copy per content
    assert set(ledger["jobs"]) == {made["supervised"], made["dpo"]}
    copies = {f.id: f for f in dst.files.list()}
    assert set(copies) == set(ledger["files"].values())
    assert {copies[ledger["files"][made["b"]]].filename} == {"b.jsonl"}
    for source_id, target_id in ledger["files"].items():
        assert dst.files.content(target_id).read() == src.files.content(source_id).read()

    supervised = dst.fine_tuning.jobs.retrieve(ledger["jobs"][made["supervised"]])
    assert supervised.model == "openft-tiny"
    assert supervised.training_file == ledger["files"][made["a"]]
    assert supervised.validation_file == ledger["files"][made["b"]]
    assert supervised.user_provided_suffix == "support"
    assert supervised.seed == 7 and supervised.metadata == {"team": "search"}
    assert supervised.method is not None and supervised.method.supervised is not None
    hyperparameters = supervised.method.supervised.hyperparameters
    assert (hyperparameters.n_epochs, hyperparameters.batch_size) == (2, 4)
    assert hyperparameters.learning_rate_multiplier == 0.5
    dpo = dst.fine_tuning.jobs.retrieve(ledger["jobs"][made["dpo"]])
    assert dpo.method is not None and dpo.method.type == "dpo" and dpo.method.dpo is not None
    assert dpo.method.dpo.hyperparameters.beta == 0.2 and dpo.method.dpo.hyperparameters.n_epochs == 1
    assert dpo.training_file == ledger["files"][made["a"]]
    assert dpo.seed == src.fine_tuning.jobs.retrieve(made["dpo"]).seed

    again = run_migrate(source, target, state)
    assert again.exit_code == 0, again.output
    assert "Copied 0 file(s) and 0 job(s); 1 job(s) skipped." in again.output
    assert len(dst.files.list().data) == 2 and len(dst.fine_tuning.jobs.list().data) == 2
    assert json.loads(state.read_text()) == ledger


def test_a_state_file_of_another_migration_is_refused(server_factory: ServerFactory, tmp_path: Path) -> None:
    source, target = server_factory(), server_factory()
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"source": "http://elsewhere/v1", "target": target.base_url}))
    refused = run_migrate(source, target, state)
    assert refused.exit_code == 1
    assert "records a migration from http://elsewhere/v1" in refused.output


def test_an_unreachable_source_is_named(server_factory: ServerFactory, tmp_path: Path) -> None:
    target = server_factory()
    source = server_factory()
    source.stop()  # nothing listens on its port any more
    refused = run_migrate(source, target, tmp_path / "state.json")
    assert refused.exit_code == 1
    assert f"could not reach {source.base_url}/files" in " ".join(refused.output.split())
    assert not (tmp_path / "state.json").exists()


def test_model_map_and_hyperparameter_checks() -> None:
    mapping = parse_model_map(["gpt-4o-mini=smollm2-135m-instruct,gpt-4o=openft-small"])
    assert mapped_model("gpt-4o-mini-2024-07-18", mapping) == "smollm2-135m-instruct"
    assert mapped_model("gpt-4o-2024-08-06", mapping) == "openft-small"
    assert mapped_model("gpt-4.1-nano", mapping) is None
    kept, dropped = checked_hyperparameters("dpo", {"n_epochs": 0, "beta": 0.1, "batch_size": None})
    assert kept == {"beta": 0.1}
    assert list(dropped) == ["n_epochs"] and "integer from 1 to 50" in dropped["n_epochs"]
    kept, dropped = checked_hyperparameters("supervised", {"n_epochs": 3, "beta": 0.1})
    assert kept == {"n_epochs": 3} and "unknown hyperparameter" in dropped["beta"]
