"""The Defenses section of ``report.md``: certified accuracy with its soundness check, and what each
poisoning defense detected and bought (:mod:`~emotic_mm.report.defense_tables`).
"""

from __future__ import annotations

from emotic_mm.report.defense_tables import DefenseTables
from emotic_mm.report.markdown import MISSING, n_text, pct, rate, seeds_text, table, unmeasured


def defense_section(tables: DefenseTables) -> str:
    """Certified accuracy with its soundness check, and what each poisoning defense detected and bought."""
    certified, radii, poison = tables.certified, tables.radii, tables.poisoning
    lines = ["## Defenses"]
    if not certified.empty:
        rows = []
        for _, r in certified.iterrows():
            sound = (
                MISSING
                if unmeasured(r["checked"])
                else f"{int(r['violations'])} of {int(r['checked'])}"
                + ("" if r["violations"] == 0 else " — WRONG")
            )
            rows.append(
                [
                    r["setting"],
                    r["arm"],
                    n_text(r["n_by_seed"], "persons"),
                    seeds_text(r["seeds"]),
                    *(
                        rate(
                            r[f"r{x}"], r[f"r{x}_low"], r[f"r{x}_high"], r[f"r{x}_seed_std"], r[f"r{x}_seeds"]
                        )
                        for x in radii
                    ),
                    rate(r["abstained"], r["abstained_low"], r["abstained_high"]),
                    sound,
                ]
            )
        lines += [
            "",
            "### Certified few-pixel robustness (randomized ablation)",
            "",
            "Certified dominant accuracy: share of the attacked persons whose certified prediction (majority "
            "vote over ablated views) is in their label set with an L0 radius of at least r pixels of the "
            "picture the model sees (pooled % [Wilson 95 %]). Soundness: (person, k) pairs with k ≤ the "
            "person's radius that the attack on the vote classifier fooled, of those checked — any "
            "non-zero count means the certificate or its implementation is wrong.",
            "",
            table(
                [
                    "setting",
                    "model · modalities",
                    "n",
                    "seeds",
                    *(f"certified r={x}" for x in radii),
                    "abstained",
                    "soundness (fooled within radius)",
                ],
                rows,
            ),
        ]
    if not poison.empty:
        rows = []
        for _, r in poison.iterrows():
            after = rate(
                r["asr_after"],
                r["asr_after_low"],
                r["asr_after_high"],
                r["asr_after_seed_std"],
                r["asr_after_seeds"],
            )
            rows.append(
                [
                    r["setting"],
                    r["model"],
                    seeds_text(r["seeds"]),
                    rate(r["tpr"], r["tpr_low"], r["tpr_high"])
                    + ("" if unmeasured(r["tpr_n"]) else f" (n {int(r['tpr_n'])})"),
                    rate(r["fpr"], r["fpr_low"], r["fpr_high"])
                    + ("" if unmeasured(r["fpr_n"]) else f" (n {int(r['fpr_n'])})"),
                    rate(r["asr"], r["asr_low"], r["asr_high"], r["asr_seed_std"], r["asr_seeds"]),
                    after,
                    f"{pct(r['clean_map_mean'], 2)} → {pct(r['map_after_mean'], 2)}",
                    rate(r["far"], r["far_low"], r["far_high"])
                    + ("" if unmeasured(r["far_n"]) else f" (n {int(r['far_n'])})"),
                    rate(r["frr"], r["frr_low"], r["frr_high"])
                    + ("" if unmeasured(r["frr_n"]) else f" (n {int(r['frr_n'])})"),
                ]
            )
        lines += [
            "",
            "### Poisoning defenses",
            "",
            "Detection on the poisoned training set (spectral signatures, activation clustering): TPR over "
            "the poisoned rows and FPR over the clean ones; then ASR on the poisoned model and after "
            "dropping the flagged rows and retraining, with the clean test mAP of the clean → defended "
            "model. STRIP at test time: false acceptance of triggered persons at the threshold set for its "
            "false-rejection target on held-out val persons, and the false rejection it then had on clean "
            "test persons. All pooled % [Wilson 95 %] over seeds; a dash where the defense does not act.",
            "",
            table(
                [
                    "setting",
                    "model",
                    "seeds",
                    "detection TPR (%)",
                    "detection FPR (%)",
                    "ASR, poisoned (%)",
                    "ASR after defense (%)",
                    "clean → defended mAP (%)",
                    "STRIP false acceptance (%)",
                    "STRIP false rejection (%)",
                ],
                rows,
            ),
        ]
    return "\n".join(lines) if len(lines) > 1 else ""
