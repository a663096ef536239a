"""Every attack kind, once: what runs it (``attack=<name>``) and how the report reads, aggregates, tables
and plots its runs.

A new attack kind is: its mechanism in ``attacks/`` (no config, no files), a recipe in ``recipes/``
(config → run dir → ``summary.json`` with ``"attack": <name>``), a config file ``configs/attack/<name>.yaml``
with ``name: <name>``, and one ``ATTACKS.register(AttackKind(...))`` here. Dispatch and report read
only this table: the report names no kind, it calls each entry's report hooks
(:class:`emotic_mm.report.hooks.ReportHooks`; none given: its measure pooled per setting and model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emotic_mm.registry import Registry, load_callable


@dataclass(frozen=True)
class AttackKind:
    """One kind of attack run (its summary's ``"attack"`` value)."""

    name: str
    recipe: str  # "module:function" taking the composed config, returning the summary
    short: str  # prefix of a setting's label in the report
    title: str  # report section heading
    measure: str  # summary key of the success measure: lower = more robust
    control: str | None  # the same measure on the clean model, where the run records it
    primary: tuple[str, ...]  # summary keys that always define a setting
    secondary: tuple[str, ...]  # summary keys that define a setting only when they vary across runs
    count: str  # summary key of the n the measure is a share of (persons, targets)
    compared: tuple[str, ...] = ("model",)  # keys the report compares pairwise, the other keys held equal
    defenses: tuple[str, ...] = (
        "input",
    )  # where-tags of the defenses this attack measures (DefenseKind.where)
    outcomes: str | None = None  # summary key of a per-target list of successes, counted as it is
    # its report hooks (emotic_mm.report.hooks.ReportHooks): an object, or "module:attribute" of one, imported
    # on first use (reading this table never imports the report); None: the measure pooled per setting, model
    report: Any = None

    def run(self, cfg: Any) -> dict[str, Any]:
        return load_callable(self.recipe)(cfg)

    def check_defense(self, cfg: Any, what: str) -> None:
        """One line when the config's defense acts somewhere this attack cannot measure (e.g. STRIP with a
        pixel attack, or a training-set filter with feature collision)."""
        from emotic_mm.defenses.registry import defense_of
        from emotic_mm.errors import ConfigError

        defense, _ = defense_of(cfg)
        missing = [w for w in defense.where if w not in self.defenses]
        if missing:
            raise ConfigError(
                f"attack={self.name} with defense={defense.name} ({what}): this attack does not measure "
                f"a defense that acts at {', '.join(missing)}; it measures defenses acting at "
                f"{', '.join(self.defenses)}"
            )


ATTACKS: Registry[AttackKind] = Registry("attack")

# the pixel budget k is not a setting: a run holds the whole curve over k (summary "curve", attack.csv)
ATTACKS.register(
    AttackKind(
        "pixel",
        "emotic_mm.recipes.pixel_evasion:run",
        "pixel",
        "Few-pixel evasion",
        "success_rate_all",
        None,
        ("algorithm", "surface", "targeted", "budget", "resolution"),
        ("target", "population", "split", "offset"),
        "persons",
        # an input defense is an arm: "does the median filter help?" is a paired comparison with "none"
        ("model", "modalities", "algorithm", "defense"),
        # "certify": an ablation checkpoint, the certified vote classifier (attacks/vote_attack.py)
        defenses=("input", "certify"),
        report="emotic_mm.report.pixel:PIXEL",
    )
)
ATTACKS.register(
    AttackKind(
        "poison_backdoor",
        "emotic_mm.recipes.backdoor:run",
        "backdoor",
        "Backdoor poisoning",
        "asr",
        "asr_clean_model",
        ("rate", "pixels", "variant"),
        (
            "surface",
            "target",
            "trigger_pattern",
            "trigger_position",
            "trigger_colour",
            "trigger_cell",
            "defense",
        ),
        "triggered_persons",
        defenses=("input", "training", "test"),
        report="emotic_mm.report.rates:BACKDOOR",
    )
)
# no control: targets are chosen among persons the clean model does not call the base class
ATTACKS.register(
    AttackKind(
        "poison_collision",
        "emotic_mm.recipes.collision:run",
        "collision",
        "Feature-collision poisoning",
        "target_success_rate",
        None,
        ("n_poisons",),
        ("targets", "base", "beta", "epsilon", "steps", "lr", "finetune", "defense"),
        "targets",
        outcomes="target_success",
        report="emotic_mm.report.rates:COLLISION",
    )
)
