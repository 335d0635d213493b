"""`openft` command line. Sub-commands import heavy libraries (torch) only when they run."""

from __future__ import annotations

import typer

from openft.cli.chat import chat
from openft.cli.data import data_app
from openft.cli.eval import eval_command
from openft.cli.experiment import experiment_app
from openft.cli.export import export_command
from openft.cli.graders import graders_app
from openft.cli.jobs import jobs_app
from openft.cli.keys import keys_app
from openft.cli.migrate import migrate
from openft.cli.models import models_app
from openft.cli.serve import serve
from openft.cli.train import train
from openft.cli.worker import worker

app = typer.Typer(
    name="openft",
    help="Self-hosted, OpenAI-compatible fine-tuning for open-weights models.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(serve)
app.command()(worker)
app.command()(chat)
app.command()(train)
app.command("eval")(eval_command)
app.command()(migrate)
app.command("export")(export_command)
app.add_typer(jobs_app, name="jobs", help="Create, follow and control fine-tuning jobs on a server.")
app.add_typer(keys_app, name="keys", help="Create, list and revoke API keys.")
app.add_typer(models_app, name="models", help="List, register and build base models.")
app.add_typer(experiment_app, name="experiment", help="Experiments: how much would more data help?")
app.add_typer(graders_app, name="graders", help="Check a grader, or score a sample with it, on a server.")
app.add_typer(data_app, name="data", help="Check training data (errors, tokens, cost, lint) and split files.")


if __name__ == "__main__":
    app()
