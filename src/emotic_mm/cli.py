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

# command → (module under emotic_mm.stages whose ``main(cfg)`` runs it; its config is
# configs/<command>.yaml, help)
STAGES: dict[str, tuple[str, str]] = {
    "prepare": (
        "prepare",
        "Convert the EMOTIC release (default: the synthetic stand-in) into a prepared store.",
    ),
    "train": ("train", "Train the baseline (separate embeddings) or joint (shared space) image+text model."),
    "eval": (
        "evaluate",
        "Evaluate a checkpoint: mAP, VAD error, dominant emotion, F1, retrieval; files in the run dir.",
    ),
    "attack": (
        "attack",
        "Few-pixel evasion (batched DE or sparse random search), backdoor or feature-collision "
        "poisoning against a checkpoint or a cached clean model.",
    ),
    "report": (
        "report",
        "Aggregate attack and poisoning runs (e.g. a multirun folder) into report.md, report.json and plots.",
    ),
    "predict": (
        "predict",
        "Emotions of people in new photos (one image, or a CSV of images, boxes and texts) "
        "from a checkpoint.",
    ),
}


def _predict_args(args: list[str]) -> list[str]:
    # `text` names the description-source config group, so Hydra would read text=... as a group choice
    return [f"description={a[5:]}" if a.startswith("text=") else a for a in args]


ARGUMENT_REWRITES = {"predict": _predict_args}


def _register(command: str, module: str, help_text: str) -> None:
    """One Typer command that hands its arguments to the stage's Hydra app (imported only when run)."""

    def run(ctx: typer.Context) -> None:
        import importlib

        main = importlib.import_module(f"emotic_mm.stages.{module}").main
        run_stage(command, main, ARGUMENT_REWRITES.get(command, list)(list(ctx.args)))

    app.command(command, help=help_text, context_settings=HYDRA_ARGS, add_help_option=False)(run)


for _command, (_module, _help) in STAGES.items():
    _register(_command, _module, _help)


if __name__ == "__main__":
    app()
