"""How many rows a batched engine (attack queries, ablated views) sends through a model per forward pass.

One rule for the pixel-attack engine and the randomized-ablation vote sampler, which import it from here.
"""

from __future__ import annotations

import torch

CPU_ROWS = (
    16  # rows per forward pass on a CPU: a chunk whose activations stay in cache (see rows_per_forward)
)


def rows_per_forward(rows: int | None, device: torch.device | str, accelerator_rows: int = 256) -> int:
    """Rows per forward pass of a batched engine (attack queries, ablated views): ``rows`` when set, else
    :data:`CPU_ROWS` on a CPU and ``accelerator_rows`` on CUDA/MPS. On a CPU a small chunk is the fast
    one, because a large chunk's activations spill out of cache (images/s by chunk size:
    ``scripts/benchmarks/bench_inference.py``, docs/models.md)."""
    if rows is not None:
        return int(rows)
    return CPU_ROWS if torch.device(device).type == "cpu" else int(accelerator_rows)
