"""Benchmark the converter behind ``emotic-mm prepare``: persons/s and peak memory at two sizes.

What it measures
    ``emotic_mm.data.convert.convert_release`` (the code ``emotic-mm prepare`` runs) on two seeded
    synthetic raw releases, a *small* one and a *large* one ``--scale`` times bigger. Generating the
    releases is not timed. Each conversion runs in a fresh Python process, so one size's allocations
    cannot hide or inflate the other's peak. In that process the script records

    * wall time of ``convert_release`` and persons processed / kept (from the manifest), hence persons/s;
    * the RSS just before the conversion (after imports and a tokenizer load): the *baseline*;
    * the peak RSS of the main process during the conversion (``VmHWM``, reset just before the
      conversion via ``/proc/self/clear_refs`` where Linux allows it, else ``ru_maxrss``), and the
      *increment* = peak - baseline, i.e. what the conversion itself costs;
    * a 10 ms sampler's peaks of anonymous memory (Python objects, numpy buffers) and file-backed
      memory (the pages of the ``.npy`` memory maps), to tell which kind grows if the peak is not flat;
    * the peak RSS of the largest decode worker (its ``VmHWM``, sampled from ``/proc``; ``RUSAGE_CHILDREN``
      is kept in the JSON but is not used, because importing torch forks ``ldconfig`` from the
      already-large process before the conversion, and that child's RSS dominates the maximum);
    * per phase (read .mat, pixels, labels, describe, tokenize, csv, other), how much anon memory grew
      during it (peak during each call - value on entry, summed over the splits), by wrapping those
      functions (behaviour unchanged); since freed heap is rarely returned to the OS, growth is sticky
      and the per-phase numbers add up to the anon part of the increment;
    * the size of the finished store on disk.

Why ratios, not absolute numbers
    Seconds and megabytes depend on the machine, the disk, the page cache and the libraries' own
    footprint. The claim under test is relative: the converter streams pixels into preallocated
    memory maps and decodes through a bounded window, so its memory increment should stay roughly
    constant while the number of persons grows ``--scale`` times. The script therefore reports
    increment(large)/increment(small) next to persons(large)/persons(small), plus the per-person slope
    of the increment (a slope near the pixel bytes of one person, ~196 KB at 224/128 px, would mean the
    pixels are being kept). The increment is split into anon and file-backed parts: the file-backed
    part is the pixel path (memory-map pages, bounded by ``flush_every`` rows), the anon part is
    per-person metadata (annotations, descriptions, tokens, CSV). Persons/s at the small size is
    dominated by fixed start-up cost (spawning the workers, loading the tokenizer), so the script also
    prints the marginal rate (extra persons / extra seconds), which should stay constant (linear time).

How to run
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/benchmarks/bench_prepare.py
    # options: --small-images 300 --scale 4 --workers 2 --out bench_results/prepare.json
    #          --workdir DIR (default: a fresh temp dir)  --keep (do not delete it)

The default (300/60/120 images small, 4x large, 2 workers) takes about 40-60 s on a 2-core CPU,
of which ~20 s is generating the releases.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchlib import machine_info, write_report  # scripts/benchmarks/benchlib.py

MARK = "BENCH_PREPARE_RESULT "
MB = 1024 * 1024
PIXEL_BYTES_PER_PERSON = 224 * 224 * 3 + 128 * 128 * 3  # default context + body rows
FLAT_RATIO = 1.25  # increment(large)/increment(small) at or below this counts as flat


# --------------------------------------------------------------------------- child side
def _status_kb(*keys: str) -> dict[str, int]:
    """Fields of /proc/self/status in KiB (empty off Linux)."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in keys:
                    out[name] = int(rest.split()[0])
    except OSError:
        pass
    return out


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _child_pids() -> set[int]:
    """Live child processes of this process (the decode workers), via /proc."""
    pids: set[int] = set()
    try:
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/children") as f:
                    pids.update(int(p) for p in f.read().split())
            except OSError:
                continue
    except OSError:
        pass
    return pids


def _is_worker(pid: int) -> bool:
    """A spawned multiprocessing child after its exec (before exec it still shows our own image and
    cmdline, and its RSS would be ours, not a worker's)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"spawn_main" in f.read()
    except OSError:
        return False


def _pid_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


# Phases of convert_release, by the module-level function that runs them (missing names are skipped).
PHASES = (
    ("emotic_mm.data.emotic_mat", "load_annotations", "read .mat"),
    ("emotic_mm.data.convert", "_convert_split", "pixels"),
    ("emotic_mm.data.convert", "_label_arrays", "labels"),
    ("emotic_mm.data.convert", "describe", "describe"),
    ("emotic_mm.data.convert", "tokenize", "tokenize"),
    ("emotic_mm.data.convert", "_csv", "csv"),
)


class _Sampler(threading.Thread):
    """Every ``interval`` s: this process's VmRSS / RssAnon / RssFile peaks, the VmHWM of every child
    process (decode worker) seen, and per phase the growth of RssAnon / RssFile (peak during each
    call minus the value on entry, summed over the calls, i.e. over the splits)."""

    KEYS = ("VmRSS", "RssAnon", "RssFile")

    def __init__(self, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.peak = dict.fromkeys(self.KEYS, 0)
        self.worker_hwm: dict[int, int] = {}
        self.phase = "other"
        self.entry = _status_kb(*self.KEYS)
        self.call_peak = dict(self.entry)
        self.growth: dict[str, dict[str, int]] = {}

    def sample(self) -> dict[str, int]:
        now = _status_kb(*self.KEYS)
        with self.lock:
            for k, v in now.items():
                self.peak[k] = max(self.peak[k], v)
                self.call_peak[k] = max(self.call_peak.get(k, 0), v)
            for pid in filter(_is_worker, _child_pids()):
                self.worker_hwm[pid] = max(self.worker_hwm.get(pid, 0), _pid_hwm_kb(pid))
        return now

    def _close_call(self) -> None:
        g = self.growth.setdefault(self.phase, {"RssAnon": 0, "RssFile": 0, "calls": 0})
        for k in ("RssAnon", "RssFile"):
            g[k] += max(0, self.call_peak.get(k, 0) - self.entry.get(k, 0))
        g["calls"] += 1

    def enter(self, phase: str) -> str:
        now = self.sample()
        with self.lock:
            self._close_call()
            previous, self.phase = self.phase, phase
            self.entry, self.call_peak = dict(now), dict(now)
        return previous

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
        self.join()
        self.sample()
        with self.lock:
            self._close_call()


def _instrument(sampler: _Sampler) -> None:
    """Wrap the phase functions so the sampler knows which phase is running (behaviour unchanged)."""
    import importlib

    for module_name, attr, phase in PHASES:
        module = importlib.import_module(module_name)
        fn = getattr(module, attr, None)
        if fn is None:
            continue

        def wrapped(*a, _fn=fn, _phase=phase, **k):
            previous = sampler.enter(_phase)
            try:
                return _fn(*a, **k)
            finally:
                sampler.enter(previous)

        setattr(module, attr, wrapped)


def run_child(raw_dir: Path, out_dir: Path, workers: int) -> dict:
    from omegaconf import OmegaConf

    from emotic_mm.data.convert import ConvertOptions, convert_release
    from emotic_mm.data.tokens import load_tokenizer

    tokenizer_name = "shipped:all-MiniLM-L6-v2"
    load_tokenizer(tokenizer_name)  # warm the imports (transformers) and the file cache
    opts = ConvertOptions(
        raw_dir=raw_dir,
        out_dir=out_dir,
        text_cfg=OmegaConf.create({"source": "file", "path": str(raw_dir / "descriptions.jsonl")}),
        tokenizer_name=tokenizer_name,
        workers=workers,
    )
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    base = _status_kb(*_Sampler.KEYS)
    hwm_reset = _reset_peak()
    sampler = _Sampler()
    _instrument(sampler)
    sampler.start()
    t0 = time.perf_counter()
    manifest = convert_release(opts)
    seconds = time.perf_counter() - t0
    sampler.stop()

    hwm = _status_kb("VmHWM").get("VmHWM")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    use_hwm = hwm_reset and hwm is not None
    peak_kb = hwm if use_hwm else maxrss
    splits = manifest["splits"]
    store_bytes = sum(p.stat().st_size for p in Path(out_dir).rglob("*") if p.is_file())
    b_anon, b_file = base.get("RssAnon", 0), base.get("RssFile", 0)
    phases = {
        name: {
            "anon_growth_mb": g["RssAnon"] / 1024,
            "file_growth_mb": g["RssFile"] / 1024,
            "calls": g["calls"],
        }
        for name, g in sampler.growth.items()
    }
    return {
        "persons": int(sum(s["persons"] for s in splits.values())),
        "kept": int(sum(s["kept"] for s in splits.values())),
        "per_split": {k: {"persons": v["persons"], "kept": v["kept"]} for k, v in splits.items()},
        "seconds": seconds,
        "baseline_rss_mb": base.get("VmRSS", maxrss_before) / 1024,
        "baseline_anon_mb": b_anon / 1024,
        "baseline_file_mb": b_file / 1024,
        "maxrss_before_mb": maxrss_before / 1024,
        "peak_rss_mb": peak_kb / 1024,
        "peak_source": "VmHWM after clear_refs" if use_hwm else "ru_maxrss (includes pre-conversion peak)",
        "maxrss_mb": maxrss / 1024,
        "sampled_peak_rss_mb": sampler.peak["VmRSS"] / 1024,
        "sampled_peak_anon_mb": sampler.peak["RssAnon"] / 1024,
        "sampled_peak_file_mb": sampler.peak["RssFile"] / 1024,
        "phases": phases,
        "worker_peak_mb": (max(sampler.worker_hwm.values()) / 1024) if sampler.worker_hwm else None,
        "workers_seen": len(sampler.worker_hwm),
        "rusage_children_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "rusage_children_maxrss_before_mb": children_before / 1024,
        "store_mb": store_bytes / MB,
    }


# --------------------------------------------------------------------------- parent side

PACKAGES = ("numpy", "pillow", "transformers")  # versions recorded with the figures


def generate(raw_dir: Path, images: dict[str, int]) -> float:
    from emotic_mm.synthetic import SyntheticSpec, generate_raw

    raw_dir.mkdir(parents=True, exist_ok=False)
    t0 = time.perf_counter()
    generate_raw(SyntheticSpec(seed=0, images=images), raw_dir)
    return time.perf_counter() - t0


def convert_in_child(raw_dir: Path, out_dir: Path, workers: int) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--raw",
        str(raw_dir),
        "--store",
        str(out_dir),
        "--workers",
        str(workers),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"conversion child failed (rc={proc.returncode}): {shlex.join(cmd)}")
    return json.loads(lines[-1][len(MARK) :])


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _fmt(v: float | None, spec: str = ".0f") -> str:
    return "-" if v is None else format(v, spec)


def main_parent(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # rich falls back to 80 columns when piped; the table needs more
        console = Console(width=160)
    small = {
        "train": args.small_images,
        "val": max(1, args.small_images // 5),
        "test": max(1, (2 * args.small_images) // 5),
    }
    sizes = {"small": small, "large": {k: v * args.scale for k, v in small.items()}}

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_prepare_"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    try:
        for name, images in sizes.items():
            raw, store = workdir / f"raw_{name}", workdir / f"store_{name}"
            for p in (raw, store):
                shutil.rmtree(p, ignore_errors=True)
            console.print(f"[dim]{name}: generating {images} images (not timed) ...[/dim]")
            gen_s = generate(raw, images)
            console.print(f"[dim]{name}: converting in a fresh process (workers={args.workers}) ...[/dim]")
            row = convert_in_child(raw, store, args.workers)
            row.update(images=images, generate_seconds=gen_s)
            row["persons_per_s"] = row["persons"] / row["seconds"]
            row["increment_mb"] = row["peak_rss_mb"] - row["baseline_rss_mb"]
            row["increment_anon_mb"] = row["sampled_peak_anon_mb"] - row["baseline_anon_mb"]
            row["increment_file_mb"] = row["sampled_peak_file_mb"] - row["baseline_file_mb"]
            rows[name] = row
    finally:
        if args.keep:
            console.print(f"[dim]kept {workdir}[/dim]")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    table = Table(title=f"convert_release, workers={args.workers} (MB = MiB; increment = peak - baseline)")
    cols = [
        "size",
        "persons",
        "kept",
        "seconds",
        "persons/s",
        "baseline RSS MB",
        "peak RSS MB",
        "increment MB",
        "of which anon/file MB",
        "worker peak MB",
        "store MB",
    ]
    for c in cols:
        table.add_column(c, justify="left" if c == "size" else "right")
    for name, r in rows.items():
        table.add_row(
            name,
            str(r["persons"]),
            str(r["kept"]),
            f"{r['seconds']:.1f}",
            f"{r['persons_per_s']:.0f}",
            f"{r['baseline_rss_mb']:.0f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['increment_mb']:.0f}",
            f"{r['increment_anon_mb']:.0f} / {r['increment_file_mb']:.0f}",
            _fmt(r["worker_peak_mb"]),
            f"{r['store_mb']:.0f}",
        )
    console.print(table)

    phase_names = [p for _, _, p in PHASES if any(p in r["phases"] for r in rows.values())] + ["other"]
    phase_table = Table(
        title="anon memory growth per phase, MB (peak during each call - value on entry, "
        "summed over splits; pixels also shows its file-backed peak)"
    )
    phase_table.add_column("size")
    for p in phase_names:
        phase_table.add_column(p, justify="right")
    for name, r in rows.items():
        ph = r["phases"]
        cells = []
        for p in phase_names:
            if p not in ph:
                cells.append("-")
            elif p == "pixels":
                cells.append(f"{ph[p]['anon_growth_mb']:.1f} (+{r['increment_file_mb']:.0f} file)")
            else:
                cells.append(f"{ph[p]['anon_growth_mb']:.1f}")
        phase_table.add_row(name, *cells)
    console.print(phase_table)

    s, l = rows["small"], rows["large"]
    d_persons = l["persons"] - s["persons"]

    def slope(key: str) -> float | None:
        return (l[key] - s[key]) * 1024 / d_persons if d_persons else None

    ratios = {
        "persons": _ratio(l["persons"], s["persons"]),
        "increment": _ratio(l["increment_mb"], s["increment_mb"]),
        "increment_anon": _ratio(l["increment_anon_mb"], s["increment_anon_mb"]),
        "increment_file": _ratio(l["increment_file_mb"], s["increment_file_mb"]),
        "peak_rss": _ratio(l["peak_rss_mb"], s["peak_rss_mb"]),
        "worker_peak": _ratio(l["worker_peak_mb"] or 0, s["worker_peak_mb"] or 0),
        "persons_per_s": _ratio(l["persons_per_s"], s["persons_per_s"]),
        "marginal_persons_per_s": _ratio(d_persons, l["seconds"] - s["seconds"]),
        "store": _ratio(l["store_mb"], s["store_mb"]),
        "increment_kb_per_person": slope("increment_mb"),
        "increment_anon_kb_per_person": slope("increment_anon_mb"),
        "increment_file_kb_per_person": slope("increment_file_mb"),
        "pixel_kb_per_person": PIXEL_BYTES_PER_PERSON / 1024,
    }
    flat = ratios["increment"] is not None and ratios["increment"] <= FLAT_RATIO
    pixels_flat = ratios["increment_file"] is not None and ratios["increment_file"] <= FLAT_RATIO
    verdict = (
        "flat"
        if flat
        else "pixel path flat, per-person metadata grows"
        if pixels_flat
        else "grows with persons"
    )
    console.print(
        f"persons x{ratios['persons']:.2f} -> increment x{ratios['increment']:.2f} "
        f"(anon x{_fmt(ratios['increment_anon'], '.2f')}, "
        f"file-backed x{_fmt(ratios['increment_file'], '.2f')}); "
        f"peak RSS x{ratios['peak_rss']:.2f}, worker peak x{_fmt(ratios['worker_peak'], '.2f')}, "
        f"persons/s x{ratios['persons_per_s']:.2f} (marginal {_fmt(ratios['marginal_persons_per_s'], '.0f')} "
        f"persons/s, i.e. without the fixed start-up cost), store x{ratios['store']:.2f}"
    )
    console.print(
        f"increment slope {_fmt(ratios['increment_kb_per_person'], '.1f')} KB/person "
        f"(anon {_fmt(ratios['increment_anon_kb_per_person'], '.1f')}, "
        f"file-backed {_fmt(ratios['increment_file_kb_per_person'], '.1f')}) vs "
        f"{ratios['pixel_kb_per_person']:.0f} KB of pixels per person -> "
        + ("[green]" if flat else "[yellow]" if pixels_flat else "[red]")
        + verdict
        + f"[/] (flat = increment ratio <= {FLAT_RATIO})"
    )

    write_report(
        args.out,
        "prepare/convert_release",
        machine_info(PACKAGES),
        {
            "settings": {
                "small_images": args.small_images,
                "scale": args.scale,
                "workers": args.workers,
                "tokenizer": "shipped:all-MiniLM-L6-v2",
                "text_source": "file",
                "seed": 0,
                "sizes": sizes,
            },
            "rows": rows,
            "ratios": ratios,
            "verdict": verdict,
            "memory_flat": flat,
            "pixel_path_flat": pixels_flat,
            "flat_rule": f"increment(large)/increment(small) <= {FLAT_RATIO} (pixel path: the same ratio on "
            "the file-backed part of the increment)",
            "notes": {
                "worker_peak_mb": "max VmHWM of the decode workers, sampled from /proc every 10 ms",
                "rusage_children_maxrss_mb": (
                    "RUSAGE_CHILDREN; also counts short-lived children forked before "
                    "the conversion (e.g. ldconfig run by ctypes.util.find_library "
                    "while torch is imported), so not used for the worker column"
                ),
                "phases": "per phase, sum over its calls of (peak RSS during the call - RSS on entry), "
                "anon and file-backed separately; other = everything outside the wrapped functions "
                "(tokenizer load, description file parse, pool start/shutdown, manifest)",
            },
        },
    )
    console.print(f"wrote {args.out}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--small-images",
        type=int,
        default=300,
        help="train images of the small release (val = 1/5, test = 2/5 of it)",
    )
    ap.add_argument("--scale", type=int, default=4, help="large release = scale x small")
    ap.add_argument("--workers", type=int, default=2, help="decode worker processes (0 = in-process)")
    ap.add_argument("--out", default="bench_results/prepare.json")
    ap.add_argument("--workdir", default=None, help="where raw releases and stores go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the workdir")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--raw", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        result = run_child(Path(args.raw), Path(args.store), args.workers)
        print(MARK + json.dumps(result), flush=True)
    else:
        main_parent(args)


if __name__ == "__main__":
    main()
