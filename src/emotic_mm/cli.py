"""The ``emotic-mm`` command: one Typer command per stage, each handing its arguments to Hydra.

``emotic-mm <stage> [overrides] [-m] [--cfg job] [--help]`` composes ``configs/<stage>.yaml``.
Run as ``python -m emotic_mm.cli <stage> ...`` too (e.g. under ``torchrun``).
"""

from __future__ import annotations

import typer

from emotic_mm.config import run_stage

app = typer.Typer(
    help="Multi-modal (image + text) emotion recognition on EMOTIC, and its robustness to few-pixel "
         "attacks and poisoning. Every stage is a Hydra app: pass key=value overrides, -m for sweeps, "
         "--cfg job to see the composed config, --help for its config groups.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """Stages: prepare → train → eval → attack → report; predict on new photos."""


HYDRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@app.command(context_settings=HYDRA_ARGS, add_help_option=False)
def prepare(ctx: typer.Context) -> None:
    """Convert the EMOTIC release (default: the synthetic stand-in) into a prepared store."""
    from emotic_mm.stages.prepare import main

    run_stage("prepare", main, list(ctx.args))


@app.command(context_settings=HYDRA_ARGS, add_help_option=False)
def train(ctx: typer.Context) -> None:
    """Train the baseline (separate embeddings) or joint (shared space) image+text model."""
    from emotic_mm.stages.train import main

    run_stage("train", main, list(ctx.args))


@app.command("eval", context_settings=HYDRA_ARGS, add_help_option=False)
def evaluate(ctx: typer.Context) -> None:
    """Evaluate a checkpoint: mAP, VAD error, dominant emotion, F1, retrieval; files in the run dir."""
    from emotic_mm.stages.evaluate import main

    run_stage("eval", main, list(ctx.args))


@app.command(context_settings=HYDRA_ARGS, add_help_option=False)
def attack(ctx: typer.Context) -> None:
    """Few-pixel evasion (batched differential evolution or sparse random search) against a checkpoint."""
    from emotic_mm.stages.attack import main

    run_stage("attack", main, list(ctx.args))


@app.command(context_settings=HYDRA_ARGS, add_help_option=False)
def report(ctx: typer.Context) -> None:
    """Aggregate attack and poisoning runs (e.g. a multirun folder) into report.md, report.json and plots."""
    from emotic_mm.stages.report import main

    run_stage("report", main, list(ctx.args))


@app.command(context_settings=HYDRA_ARGS, add_help_option=False)
def predict(ctx: typer.Context) -> None:
    """Emotions of people in new photos (one image, or a CSV of images, boxes and texts) from a checkpoint."""
    from emotic_mm.stages.predict import main

    # `text` names the description-source config group, so Hydra would read text=... as a group choice
    args = [f"description={a[5:]}" if a.startswith("text=") else a for a in ctx.args]
    run_stage("predict", main, args)


if __name__ == "__main__":
    app()
