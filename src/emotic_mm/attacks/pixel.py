"""Few-pixel evasion attacks, batched: differential evolution (Su et al., 2019) and sparse random search.

Why our own engine: the existing implementations (torchattacks ``OnePixel``, ART ``PixelAttack``) solve
one differential-evolution problem per image with scipy, loop in Python over candidates, and accept a
single-tensor model. Here the populations of *many images* are evolved at once as tensors: candidates
are written into image copies by batched indexing, fitness is computed from one chunked forward pass of
the multi-input model (``attack.max_batch`` bounds memory whatever the population), and images that
succeed leave the working batch so compute goes to the rest. Its speed is therefore bounded by the
model's forward throughput, not by Python.

Threat model: at test time the attacker sets ``k`` pixels of the picture to any colour (0-255 per
channel); the description is untouched. ``surface`` is the view the pixels are written into:
``context`` (the whole-image view), ``body`` (the person crop) or ``scene`` — a pixel written into the
context view is also painted over the matching region of the body crop through the stored box, as if the
photo itself had been edited.

Goal: untargeted — the top-1 category must change from the clean top-1; targeted — a chosen category
must become top-1. Fitness is a logit margin (clean top-1 minus the best other, or best other minus the
target); success is a negative margin. Queries are model evaluations per image, counted exactly.

Shapes: candidates are (images, population, k, 5) with (x, y, r, g, b) in the surface's pixel grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace

import torch
from torch import nn

from emotic_mm.attacks.surface import check_surface, paint_surface, painted_view, scene_affine, touched_views
from emotic_mm.batching import rows_per_forward
from emotic_mm.errors import ConfigError

ALGORITHMS = ("de", "rs")
CANDIDATE_BYTES = 2 * 1024**3  # the largest candidate tensor (images × population × k × 5 floats) allowed


@dataclass
class PixelAttackSettings:
    """Search settings; ``budget`` is the number of model evaluations allowed per image."""

    pixels: int = 1
    surface: str = "context"
    algorithm: str = "de"
    targeted: bool = False
    budget: int = 400
    population: int = 40  # DE population per image (RS: proposals per image and iteration)
    mutation: float = 0.5  # DE scale F (Su et al.: 0.5, no crossover)
    crossover: float = 1.0  # DE crossover rate (1.0 = the one-pixel paper's "no crossover")
    rs_fraction: float = 0.5  # RS: share of the k pixels resampled per proposal
    max_batch: int | None = None  # forward-pass chunk (bounds memory); None: by device (rows_per_forward)
    seed: int = 0
    amp: bool = True  # bf16 autocast on CUDA
    cache_unchanged: bool = True  # encode the views the attack never changes once, not per query

    def check(self) -> None:
        if self.pixels <= 0:
            raise ConfigError(f"attack.pixels={self.pixels} must be >= 1")
        check_surface(self.surface)
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"attack.algorithm={self.algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        if self.population < (4 if self.algorithm == "de" else 1):
            raise ConfigError(f"attack.population={self.population} is too small for {self.algorithm}")
        if self.budget < self.population:
            raise ConfigError(f"attack.budget={self.budget} must be >= attack.population={self.population}")
        if self.max_batch is not None and self.max_batch < 1:
            raise ConfigError(f"attack.max_batch={self.max_batch} must be >= 1")

    def check_fits(self, images: int, height: int, width: int) -> None:
        """Bound memory from the settings before allocating: k within the surface, and the populations
        of ``images`` images within :data:`CANDIDATE_BYTES`."""
        if self.pixels > height * width:
            raise ConfigError(
                f"attack.pixels={self.pixels} exceeds the {height}x{width} = {height * width} pixels "
                f"of the {painted_view(self.surface)} view it paints"
            )
        needed = images * self.population * self.pixels * 5 * 4
        if needed > CANDIDATE_BYTES:
            raise ConfigError(
                f"attack.pixels={self.pixels} x attack.population={self.population} x {images} images needs "
                f"{needed / 1024**3:.1f} GiB of candidates (limit {CANDIDATE_BYTES / 1024**3:.0f} GiB); "
                "lower attack.images_per_batch or attack.population"
            )


@dataclass
class PixelAttackResult:
    """Per image: success, queries used, best candidate (k, 5), margins, top-1 before/after, and the
    adversarial views themselves (every view the surface touches, painted with ``pixels``)."""

    success: torch.Tensor  # (N,) bool
    queries: torch.Tensor  # (N,) int64
    pixels: torch.Tensor  # (N, k, 5) int64 (x, y, r, g, b) on the surface grid
    margin: torch.Tensor  # (N,) best fitness reached (< 0 = success)
    clean_top1: torch.Tensor  # (N,)
    adv_top1: torch.Tensor  # (N,)
    clean_confidence: torch.Tensor  # (N,) sigmoid score of the clean top-1 on the clean input
    adv_confidence: torch.Tensor  # (N,) sigmoid score of the adversarial top-1 on the adversarial input
    views: dict[str, torch.Tensor]  # view name → (N, 3, H, W) adversarial pictures, on the inputs' device


@dataclass
class ScheduleResult:
    """A success-vs-k curve in one pass: per image, the outcome at every k of the schedule.

    ``pixels_needed`` is the smallest k that fooled the image (0: none did) — the L0 analogue of the
    minimal adversarial perturbation. Success is monotone in k by construction: an image fooled with k
    pixels counts as fooled at every larger k and is not attacked again.
    """

    ks: list[int]
    success: torch.Tensor  # (N, K) bool: fooled with at most ks[j] pixels
    adv_top1: torch.Tensor  # (N, K): top-1 under the attack at budget ks[j]
    pixels_needed: torch.Tensor  # (N,) int64, 0 = not fooled up to max(ks)
    queries: torch.Tensor  # (N,) int64, cumulative over the k levels attacked
    pixels: torch.Tensor  # (N, max k, 5) int64: the fooling candidate (or the last tried), rows of -1 pad
    clean_top1: torch.Tensor  # (N,)
    clean_confidence: torch.Tensor  # (N,)
    margin: torch.Tensor  # (N,) best fitness of the attempt ``pixels`` comes from (< 0 = success)
    adv_confidence: torch.Tensor  # (N,) sigmoid score of the adversarial top-1 on ``views``
    views: dict[str, torch.Tensor]  # the adversarial pictures of ``pixels``


# (views of the images, their indices) -> (judged success, top-1, confidence) of each: see run_schedule
Confirm = Callable[[dict[str, torch.Tensor], torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


# --------------------------------------------------------------------------- search helpers
def distinct_donors(m: int, p: int, gen: torch.Generator) -> torch.Tensor:
    """(m, p, 3) member indices, distinct from each other and from the member itself (DE/rand/1).

    Drawn in O(m·p) with vectorised rejection of the few clashes, rather than a (p × p) permutation
    per member, so large populations stay cheap.
    """
    own = torch.arange(p)[None, :].expand(m, p)
    donors = torch.empty(m, p, 3, dtype=torch.long)
    for j in range(3):
        taken = [own] + [donors[..., i] for i in range(j)]
        draw = torch.randint(0, p, (m, p), generator=gen)
        clash = torch.zeros(m, p, dtype=torch.bool)
        for t in taken:
            clash |= draw == t
        while clash.any():
            draw[clash] = torch.randint(0, p, (int(clash.sum()),), generator=gen)
            clash = torch.zeros(m, p, dtype=torch.bool)
            for t in taken:
                clash |= draw == t
        donors[..., j] = draw
    return donors


# --------------------------------------------------------------------------- the engine
class PixelAttack:
    """Run a batched few-pixel attack against any project model (batch dict in, ``logits`` out)."""

    def __init__(
        self, model: nn.Module, settings: PixelAttackSettings, device: torch.device | None = None
    ) -> None:
        settings.check()
        self.model = model
        self.device = device or next(model.parameters()).device
        self.s = replace(settings, max_batch=rows_per_forward(settings.max_batch, self.device))

    def run_schedule(
        self,
        inputs: dict[str, torch.Tensor],
        ks: Sequence[int],
        label: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        image_sizes: torch.Tensor | None = None,
        confirm: Confirm | None = None,
    ) -> ScheduleResult:
        """Attack every image with k = ks[0], then only the images not yet fooled with ks[1], and so on
        (``budget`` queries per image per k). The whole curve costs about what the largest k costs on the
        hardest images, instead of one full run per k.

        ``confirm(views, images)``, when given, judges each level's adversarial pictures of ``images`` again
        and returns (success, top-1, confidence) for them: an image counts as fooled only when the judge
        agrees, and otherwise goes on to the next k (e.g. a vote classifier queried with fewer samples
        than the one that is certified, :mod:`emotic_mm.attacks.vote_attack`)."""
        ks = sorted({int(k) for k in ks})
        surface = painted_view(self.s.surface)
        if surface not in inputs:
            raise ConfigError(f"attack.surface={self.s.surface!r}: the model has no {surface!r} input")
        n, _, height, width = inputs[surface].shape
        replace(self.s, pixels=ks[-1]).check_fits(n, height, width)
        dev = self.device
        success = torch.zeros(n, len(ks), dtype=torch.bool)
        adv_top1 = torch.zeros(n, len(ks), dtype=torch.long)
        needed = torch.zeros(n, dtype=torch.long)
        queries = torch.zeros(n, dtype=torch.long)
        margin, adv_conf = torch.zeros(n), torch.zeros(n)
        pixels = torch.full((n, ks[-1], 5), -1, dtype=torch.long)
        views: dict[str, torch.Tensor] | None = None
        clean_top1 = clean_conf = None
        remaining = torch.arange(n)
        if self.s.cache_unchanged:  # the views no k changes are encoded once for the whole curve
            inputs = self._with_cached_features(inputs)
        for j, k in enumerate(ks):
            if len(remaining) == 0:
                success[:, j], adv_top1[:, j] = success[:, j - 1], adv_top1[:, j - 1]
                continue
            engine = PixelAttack(self.model, replace(self.s, pixels=k, cache_unchanged=False), dev)
            on = remaining.to(dev)
            part = {key: v[on] for key, v in inputs.items()}
            given = (
                None
                if label is None and clean_top1 is None
                else (label if label is not None else clean_top1)[remaining]
            )
            r = engine.run(
                part,
                None if given is None else given.to(dev),
                None if boxes is None else boxes[remaining],
                None if image_sizes is None else image_sizes[remaining],
            )
            if confirm is not None:
                judged, top1, conf = confirm(r.views, remaining)
                r = replace(r, success=judged.cpu(), adv_top1=top1.cpu(), adv_confidence=conf.cpu())
            if clean_top1 is None:  # the first level sees every image: its clean pass is everyone's
                clean_top1, clean_conf = r.clean_top1, r.clean_confidence
                views = {key: v.clone() for key, v in r.views.items()}
            if j > 0:  # images fooled at a smaller k keep that outcome
                success[:, j], adv_top1[:, j] = success[:, j - 1], adv_top1[:, j - 1]
            success[remaining, j] = r.success
            adv_top1[remaining, j] = r.adv_top1
            queries[remaining] += r.queries
            needed[remaining[r.success]] = k
            pixels[remaining, :k] = r.pixels
            pixels[remaining, k:] = -1
            margin[remaining], adv_conf[remaining] = r.margin, r.adv_confidence
            for key, v in r.views.items():
                views[key][on] = v
            remaining = remaining[~r.success]
        return ScheduleResult(
            ks, success, adv_top1, needed, queries, pixels, clean_top1, clean_conf, margin, adv_conf, views
        )

    # ---------------------------------------------------------------- fitness
    def _margins(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Fitness to minimise: < 0 means success."""
        picked = logits.gather(1, label[:, None]).squeeze(1)
        others = logits.scatter(1, label[:, None], float("-inf")).max(1).values
        return others - picked if self.s.targeted else picked - others

    def _forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        use_amp = self.s.amp and self.device.type == "cuda"
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()
        with ctx:
            return self.model(batch)["logits"].float()

    def evaluate(
        self,
        inputs: dict[str, torch.Tensor],
        owner: torch.Tensor,
        cand: torch.Tensor,
        label: torch.Tensor,
        affine: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Margins and logits of candidates ``cand`` (M, k, 5) applied to images ``owner`` (M,), chunked."""
        margins, logits_all = [], []
        for start in range(0, cand.shape[0], self.s.max_batch):
            idx = owner[start : start + self.s.max_batch]
            c = cand[start : start + self.s.max_batch]
            batch = {k: v[idx] for k, v in inputs.items()}  # advanced indexing copies: safe to paint in place
            batch = paint_surface(
                batch, c, self.s.surface, None if affine is None else affine[idx], in_place=True
            )
            logits = self._forward(batch)
            margins.append(self._margins(logits, label[idx]))
            logits_all.append(logits)
        return torch.cat(margins), torch.cat(logits_all)

    # ---------------------------------------------------------------- search
    def _random_candidates(
        self, n: int, pop: int, gen: torch.Generator, height: int, width: int
    ) -> torch.Tensor:
        k = self.s.pixels
        xy = torch.rand(n, pop, k, 2, generator=gen)
        xy = xy * torch.tensor([width, height], dtype=torch.float32)
        if self.s.algorithm == "rs":  # Sparse-RS samples colours from the corners of the RGB cube
            rgb = (torch.rand(n, pop, k, 3, generator=gen) < 0.5).float() * 255.0
        else:
            rgb = torch.rand(n, pop, k, 3, generator=gen) * 255.0
        return torch.cat([xy, rgb], dim=-1)  # float, rounded when painted

    def _bounds(self, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        low = torch.zeros(5)
        high = torch.tensor([width - 1e-3, height - 1e-3, 255.0, 255.0, 255.0])
        return low, high

    @staticmethod
    def _to_pixels(cand: torch.Tensor) -> torch.Tensor:
        return torch.cat([cand[..., :2].floor(), cand[..., 2:].round()], dim=-1).long()

    @torch.inference_mode()
    def run(
        self,
        inputs: dict[str, torch.Tensor],
        label: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        image_sizes: torch.Tensor | None = None,
    ) -> PixelAttackResult:
        """Attack every image of ``inputs`` (a model batch dict, on the model's device).

        ``label`` is the class to move away from (untargeted; default: the clean top-1, computed in the
        engine's own clean pass) or towards (targeted).
        ``boxes``/``image_sizes`` are needed for the ``scene`` surface.
        """
        surface = painted_view(self.s.surface)
        if surface not in inputs:
            raise ConfigError(f"attack.surface={self.s.surface!r}: the model has no {surface!r} input")
        was_training = self.model.training
        self.model.eval()
        try:
            return self._run(inputs, label, surface, boxes, image_sizes)
        finally:
            self.model.train(was_training)

    def _run(
        self,
        inputs: dict[str, torch.Tensor],
        label: torch.Tensor | None,
        surface: str,
        boxes: torch.Tensor | None,
        image_sizes: torch.Tensor | None,
    ) -> PixelAttackResult:
        s, dev = self.s, self.device
        n, _, height, width = inputs[surface].shape
        s.check_fits(n, height, width)
        affine = None
        if s.surface == "scene":
            if "body" not in inputs:
                raise ConfigError("attack.surface=scene needs a model with a body stream (use context)")
            affine = scene_affine(inputs, boxes, image_sizes).to(dev)
        raw_views = {v: inputs[v] for v in touched_views(s.surface) if v in inputs}
        gen = torch.Generator().manual_seed(int(s.seed))
        if s.cache_unchanged:
            inputs = self._with_cached_features(inputs)

        clean_logits = torch.cat(
            [
                self._forward({k: v[i : i + s.max_batch] for k, v in inputs.items()})
                for i in range(0, n, s.max_batch)
            ]
        )
        clean_top1 = clean_logits.argmax(1)
        label = (clean_top1 if label is None else label).to(dev)
        pop_size = s.population
        queries = torch.zeros(n, dtype=torch.long)
        best = torch.zeros(n, s.pixels, 5)
        best_margin = torch.full((n,), math.inf)
        success = torch.zeros(n, dtype=torch.bool)
        low, high = self._bounds(height, width)

        # initial population (DE) / first proposals (RS): pop_size evaluations per image
        pop = self._random_candidates(n, pop_size, gen, height, width)
        fit = self._evaluate_population(inputs, pop, label, affine, torch.arange(n))
        queries += pop_size
        self._record(pop, fit, torch.arange(n), best, best_margin)
        success = best_margin < 0
        active = (~success) & (queries + pop_size <= s.budget)
        while active.any():
            idx = active.nonzero().squeeze(1)
            if s.algorithm == "de":
                children = self._de_children(pop[idx], gen, low, high)
            else:
                children = self._rs_children(best[idx], gen, height, width, pop_size)
            child_fit = self._evaluate_population(inputs, children, label, affine, idx)
            queries[idx] += pop_size
            if s.algorithm == "de":
                better = child_fit <= fit[idx]
                pop[idx] = torch.where(better[..., None, None], children, pop[idx])
                fit[idx] = torch.where(better, child_fit, fit[idx])
            self._record(children, child_fit, idx, best, best_margin)
            success = best_margin < 0
            active = (~success) & (queries + pop_size <= s.budget)

        best_px = self._to_pixels(best)
        adv_logits = self.evaluate(inputs, torch.arange(n, device=dev), best_px.to(dev), label, affine)[1]
        adv_top1 = adv_logits.argmax(1)
        views = paint_surface(raw_views, best_px, s.surface, affine)
        return PixelAttackResult(
            success=success,
            queries=queries,
            pixels=best_px,
            margin=best_margin,
            clean_top1=clean_top1.cpu(),
            adv_top1=adv_top1.cpu(),
            clean_confidence=torch.sigmoid(clean_logits).gather(1, clean_top1[:, None]).squeeze(1).cpu(),
            adv_confidence=torch.sigmoid(adv_logits).gather(1, adv_top1[:, None]).squeeze(1).cpu(),
            views=views,
        )

    def _with_cached_features(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Replace the raw inputs of untouched modalities by their encoder features (computed once).

        Exact: the model's encoders are deterministic in eval mode, so a query gives the same logits
        either way; it only stops re-encoding the body crop and the description for every candidate.
        """
        encode = getattr(self.model, "encode", None)
        modalities = getattr(self.model, "modalities", None)
        if encode is None or modalities is None:
            return inputs
        changed = touched_views(self.s.surface)
        fixed = [m for m in modalities if m not in changed]
        if not fixed:
            return inputs
        n = next(iter(inputs.values())).shape[0]
        parts: dict[str, list[torch.Tensor]] = {m: [] for m in fixed}
        for i in range(0, n, self.s.max_batch):
            feats = encode({k: v[i : i + self.s.max_batch] for k, v in inputs.items()}, only=fixed)
            for m in fixed:
                parts[m].append(feats[m])
        raw = {"text": ("input_ids", "attention_mask"), "context": ("context",), "body": ("body",)}
        drop = {k for m in fixed for k in raw[m]}
        out = {k: v for k, v in inputs.items() if k not in drop}
        out.update({f"features.{m}": torch.cat(v) for m, v in parts.items()})
        return out

    def _evaluate_population(
        self,
        inputs: dict[str, torch.Tensor],
        pop: torch.Tensor,
        label: torch.Tensor,
        affine: torch.Tensor | None,
        idx: torch.Tensor,
    ) -> torch.Tensor:
        """Fitness (len(idx), P) of the populations of images ``idx`` — one flat, chunked evaluation."""
        m, p = pop.shape[:2]
        owner = idx.to(self.device).repeat_interleave(p)
        cand = self._to_pixels(pop).reshape(m * p, self.s.pixels, 5).to(self.device)
        margins, _ = self.evaluate(inputs, owner, cand, label, affine)
        return margins.float().cpu().reshape(m, p)

    @staticmethod
    def _record(
        pop: torch.Tensor, fit: torch.Tensor, idx: torch.Tensor, best: torch.Tensor, best_margin: torch.Tensor
    ) -> None:
        value, arg = fit.min(1)
        improved = value < best_margin[idx]
        chosen = pop[torch.arange(pop.shape[0]), arg]
        best[idx] = torch.where(improved[:, None, None], chosen, best[idx])
        best_margin[idx] = torch.where(improved, value, best_margin[idx])

    def _de_children(
        self, pop: torch.Tensor, gen: torch.Generator, low: torch.Tensor, high: torch.Tensor
    ) -> torch.Tensor:
        """DE/rand/1 (with optional binomial crossover) for all images' populations at once."""
        m, p = pop.shape[:2]
        donors = distinct_donors(m, p, gen)
        gather = lambda j: pop[torch.arange(m)[:, None], donors[..., j]]  # noqa: E731
        mutant = gather(0) + self.s.mutation * (gather(1) - gather(2))
        if self.s.crossover < 1.0:
            keep = torch.rand(mutant.shape[:-1] + (1,), generator=gen) >= self.s.crossover
            mutant = torch.where(keep, pop, mutant)
        # wrap positions (the image is a torus for the search), clamp colours
        span = high - low
        xy = torch.remainder(mutant[..., :2] - low[:2], span[:2] + 1e-3) + low[:2]
        rgb = mutant[..., 2:].clamp(0.0, 255.0)
        return torch.cat([xy, rgb], dim=-1)

    def _rs_children(
        self, best: torch.Tensor, gen: torch.Generator, height: int, width: int, proposals: int
    ) -> torch.Tensor:
        """Sparse-RS style: resample a share of the current best's pixels (position and corner colour)."""
        m = best.shape[0]
        fresh = self._random_candidates(m, proposals, gen, height, width)
        base = best[:, None].expand(-1, proposals, -1, -1)
        change = torch.rand(m, proposals, self.s.pixels, 1, generator=gen) < max(
            self.s.rs_fraction, 1.0 / self.s.pixels
        )
        return torch.where(change, fresh, base)
