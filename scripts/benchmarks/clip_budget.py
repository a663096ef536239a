"""What ``model=clip`` costs at real scale, calculated rather than measured (no weights are downloaded).

Builds the architectures of the real checkpoints from their transformers configs with random weights
(``openai/clip-vit-base-patch32`` is ``CLIPConfig()``'s defaults; B/16 differs only in its patch size;
``google/siglip-base-patch16-224`` is ``SiglipConfig()``'s defaults), counts parameters, and counts the
FLOPs of one person — the context and body views through the vision tower at 224 px, the description
through the text tower — with ``torch.utils.flop_counter``. Memory follows from the parameter count:
fp32 weights (4 B/param); full fine-tuning with AdamW adds gradients and two moments (16 B/param in all),
before activations. Prints a table and writes JSON.

    python scripts/benchmarks/clip_budget.py [--out bench_results/clip_budget.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import machine_info, write_report  # noqa: E402


def architectures():
    from transformers import CLIPConfig, CLIPModel, SiglipConfig, SiglipModel

    yield "openai/clip-vit-base-patch32", CLIPModel, CLIPConfig(), 77
    yield "openai/clip-vit-base-patch16", CLIPModel, CLIPConfig(vision_config={"patch_size": 16}), 77
    yield "google/siglip-base-patch16-224", SiglipModel, SiglipConfig(), 64


def person_flops(model: torch.nn.Module, tokens: int) -> tuple[float, float]:
    """(vision GFLOPs for the two views, text GFLOPs for one description) of one forward pass."""
    from torch.utils.flop_counter import FlopCounterMode

    pixels = torch.zeros(2, 3, 224, 224)
    ids = torch.ones(1, tokens, dtype=torch.long)
    with torch.no_grad():
        with FlopCounterMode(display=False) as vision:
            model.get_image_features(pixel_values=pixels)
        with FlopCounterMode(display=False) as text:
            model.get_text_features(input_ids=ids, attention_mask=torch.ones_like(ids))
    return vision.get_total_flops() / 1e9, text.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench_results/clip_budget.json")
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    rows = []
    for name, cls, config, tokens in architectures():
        model = cls(config).eval()
        params = sum(p.numel() for p in model.parameters())
        vision = sum(p.numel() for p in model.vision_model.parameters())
        vision_gflops, text_gflops = person_flops(model, tokens)
        forward = vision_gflops + text_gflops
        rows.append(
            {
                "model": name,
                "params_m": params / 1e6,
                "vision_params_m": vision / 1e6,
                "weights_fp32_gib": params * 4 / 2**30,
                "full_finetune_adamw_gib": params * 16 / 2**30,
                "gflops_per_person_forward": forward,
                "gflops_vision_two_views": vision_gflops,
                "gflops_text": text_gflops,
                "gflops_per_person_train_step": 3 * forward,
                "text_tokens": tokens,
            }
        )
    table = Table(title="model=clip at real scale (calculated: parameters and FLOPs of the architectures)")
    for col in (
        "model",
        "params (M)",
        "fp32 weights (GiB)",
        "full FT + AdamW (GiB, no activations)",
        "GFLOPs / person, forward (2 views + text)",
        "≈ GFLOPs / person, train step (3× forward)",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["model"],
            f"{r['params_m']:.1f}",
            f"{r['weights_fp32_gib']:.2f}",
            f"{r['full_finetune_adamw_gib']:.2f}",
            f"{r['gflops_per_person_forward']:.1f}",
            f"{r['gflops_per_person_train_step']:.0f}",
        )
    Console().print(table)
    write_report(
        args.out,
        "clip_budget",
        machine_info(("transformers",)),
        {
            "rows": rows,
            "method": "random-weight architectures from transformers configs; "
            "torch.utils.flop_counter (a multiply-add counts as 2 FLOPs)",
        },
    )


if __name__ == "__main__":
    main()
