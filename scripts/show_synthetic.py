"""Draw a grid of synthetic pictures with their boxes, categories and descriptions (the README figure).

    python scripts/show_synthetic.py  # → docs/synthetic_examples.png (seed 0, 6 pictures)
    python scripts/show_synthetic.py --seed 3 --count 9 --out /tmp/examples.png

The pictures are the default release's own (``data.synthetic`` defaults, train split, from index
``--start`` on, alternating pictures of one person and of several), drawn by the generator into a
temporary folder, so the figure shows exactly what ``emotic-mm prepare`` converts. The PNG is
palette-quantised to stay small enough to commit.
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from emotic_mm.fsutil import atomic_file  # noqa: E402
from emotic_mm.synthetic import SyntheticSpec, generate_image  # noqa: E402

COLOURS = ("#ffd400", "#00e0ff", "#ff4fd8")


def render(out: Path, seed: int = 0, count: int = 6, start: int = 0, cols: int = 3) -> Path:
    """Write the figure to ``out``; returns it."""
    spec = SyntheticSpec(seed=seed)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 3.6, rows * 4.6), squeeze=False)
    with tempfile.TemporaryDirectory() as tmp:
        index = start
        for k, ax in enumerate(axes.ravel()):
            ax.axis("off")
            if k >= count:
                continue
            while True:  # alternate pictures of one person and of several, in release order
                image, texts = generate_image(spec, "train", index, Path(tmp))
                index += 1
                if (len(image.persons) > 1) == (k % 2 == 1):
                    break
            with Image.open(Path(tmp) / image.folder / image.filename) as im:
                ax.imshow(im.convert("RGB"))
            lines = []
            for p, (person, described) in enumerate(zip(image.persons, texts)):
                x1, y1, x2, y2 = person.bbox
                colour = COLOURS[p % len(COLOURS)]
                ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.4, ec=colour))
                ax.text(
                    x1 + 2,
                    y1 + 2,
                    str(p + 1),
                    color="black",
                    fontsize=7,
                    va="top",
                    bbox={"fc": colour, "ec": "none", "pad": 1},
                )
                cats = ", ".join(person.annotators[0] if person.annotators else person.combined)
                lines.append(textwrap.fill(f"{p + 1}. [{cats}] {described['text']}", 62))
            ax.set_xlim(0, image.width)
            ax.set_ylim(image.height, 0)
            ax.set_title("\n".join(lines), fontsize=5.6, loc="left", va="bottom", family="DejaVu Sans")
    fig.tight_layout(pad=0.4)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as tmp_png:
        fig.savefig(tmp_png, dpi=100, format="png")
        plt.close(fig)
        with Image.open(tmp_png) as im:
            small = im.convert("RGB").quantize(
                colors=160, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
            )
        small.save(tmp_png, format="PNG", optimize=True)
    return out


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("docs/synthetic_examples.png"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=6)
    ap.add_argument("--start", type=int, default=0, help="first train picture index")
    args = ap.parse_args(argv)
    out = render(args.out, args.seed, args.count, args.start)
    print(f"{out} ({out.stat().st_size / 1024:.0f} KB)")
    return out


if __name__ == "__main__":
    main()
