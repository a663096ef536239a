"""Beyond one process: exact shards for eval and attacks under torchrun (gloo x2 on CPU), and the
Hydra launchers (SLURM via submitit composes and validates; joblib runs a real 2-job sweep)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from torch.utils.data import DistributedSampler

from emotic_mm.training.distributed import ShardSampler, shard_bounds
from support import EMOTIC_MM, compose_cfg
from support.cli import cli_env

TORCHRUN_2 = [
    sys.executable,
    "-m",
    "torch.distributed.run",
    "--standalone",
    "--nproc_per_node=2",
    "-m",
    "emotic_mm.cli",
]  # --standalone: a free port, so parallel test sessions never collide


def _run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=cli_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


# --------------------------------------------------------------------------- the sampler
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shard_sampler_scores_every_person_exactly_once(world):
    for n in range(0, 14):
        shards = [list(ShardSampler(n, r, world)) for r in range(world)]
        assert sum(shards, []) == list(range(n))  # all, once, in order when concatenated by rank
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
        assert [len(ShardSampler(n, r, world)) for r in range(world)] == list(map(len, shards))
    with pytest.raises(ValueError):
        shard_bounds(5, 2, 2)
    # why not DistributedSampler: it pads 9 persons to 10, so one person would count twice in the metrics
    assert (
        sum(len(DistributedSampler(range(9), num_replicas=2, rank=r, shuffle=False)) for r in range(2)) == 10
    )


# --------------------------------------------------------------------------- torchrun eval
@pytest.mark.slow  # torchrun x2
def test_eval_two_ranks_gives_the_one_process_metrics(tiny, tmp_path):
    from emotic_mm.stages.evaluate import evaluate

    one = evaluate(
        compose_cfg(
            "eval", [f"checkpoint={tiny.checkpoint}", f"data.prepared_dir={tiny.store}", "device=cpu"]
        ),
        run_dir=tmp_path / "one",
    )
    _run(
        [
            *TORCHRUN_2,
            "eval",
            f"checkpoint={tiny.checkpoint}",
            f"data.prepared_dir={tiny.store}",
            "device=cpu",
            f"hydra.run.dir={tmp_path / 'two'}",
        ]
    )
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    n = one["persons"]  # every test person once: a padding sampler would score n + 1 when n is odd
    assert two["persons"] == n
    assert one["persons_per_rank"] == [n] and two["persons_per_rank"] == [(n + 1) // 2, n // 2]
    assert two["world_size"] == 2
    for key in ("map", "map_voc", "dominant_acc", "top1_hit", "f1", "vad_mae"):
        assert two[key] == pytest.approx(one[key], abs=1e-6), key
    a, b = np.load(tmp_path / "one" / "predictions.npz"), np.load(tmp_path / "two" / "predictions.npz")
    np.testing.assert_array_equal(b["index"], np.arange(n))
    np.testing.assert_allclose(b["logits"], a["logits"], rtol=0, atol=1e-5)
    assert [p.name for p in (tmp_path / "two").iterdir() if ".tmp-" in p.name] == []  # no temp leftovers


# --------------------------------------------------------------------------- torchrun attack
@pytest.mark.slow  # torchrun x2
def test_attack_two_ranks_writes_the_one_process_files(tiny, tmp_path):
    from emotic_mm.recipes.pixel_evasion import run as attack

    over = [
        "attack=pixel",
        f"checkpoint={tiny.checkpoint}",
        f"data.prepared_dir={tiny.store}",
        "device=cpu",
        "attack.persons=null",
        "attack.images_per_batch=2",
        "attack.budget=30",
        "attack.population=10",
        "attack.resolution=model",
        "attack.examples=2",
        "attack.pixels=[1,10,100]",
    ]  # the k-schedule, sharded
    one = attack(compose_cfg("attack", over), run_dir=tmp_path / "one")
    _run([*TORCHRUN_2, "attack", *over, f"hydra.run.dir={tmp_path / 'two'}"])
    two = json.loads((tmp_path / "two" / "summary.json").read_text())
    # persons in groups of 2, dealt to the ranks in turn: rank 0 takes groups 0, 2, ...,
    # rank 1 groups 1, 3, ...
    n = one["persons"]
    groups = [min(2, n - start) for start in range(0, n, 2)]
    assert one["persons_per_rank"] == [n] and two["persons_per_rank"] == [
        sum(groups[0::2]),
        sum(groups[1::2]),
    ]
    assert (tmp_path / "two" / "attack.csv").read_text() == (tmp_path / "one" / "attack.csv").read_text()
    a, b = np.load(tmp_path / "one" / "adversarial.npz"), np.load(tmp_path / "two" / "adversarial.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    for k in ("persons", "persons_correct", "success_rate_all", "total_queries"):
        assert one[k] == two[k], k
    assert 0 < one["success_rate_all"] < 1, one["curve"]  # the comparison is not vacuous


# --------------------------------------------------------------------------- Hydra launchers
@pytest.mark.parametrize("launcher,gpus,timeout", [("submitit_slurm", None, 60), ("slurm", 1, 240)])
def test_slurm_launcher_composes_and_submitit_accepts_it(tmp_path, monkeypatch, launcher, gpus, timeout):
    """The composed launcher config turned into submitit parameters the way the plugin does it, checked
    by submitit itself, down to the sbatch script (no cluster here: srun's presence is faked)."""
    import submitit
    from hydra.utils import instantiate
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
    from omegaconf import OmegaConf
    from submitit.slurm.slurm import _make_sbatch_string

    cfg = compose_cfg(
        "train",
        [f"hydra/launcher={launcher}", "hydra.launcher.partition=gpu", f"hydra.sweep.dir={tmp_path}"],
        hydra=True,
    )
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    assert params["_target_"].endswith("SlurmLauncher")
    assert (
        params["gpus_per_node"] == gpus and params["timeout_min"] == timeout and params["partition"] == "gpu"
    )
    assert isinstance(instantiate(cfg.hydra.launcher), SlurmLauncher)

    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", staticmethod(lambda: 1))
    params.pop("_target_")
    params["name"] = "train"
    executor = submitit.AutoExecutor(
        cluster="slurm",
        folder=str(tmp_path / "submitit"),
        slurm_max_num_timeout=params.pop("max_num_timeout"),
    )
    params.pop("submitit_folder")
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(
        **{k if k in base else f"slurm_{k}": v for k, v in params.items()}
    )  # raises on unknown keys
    script = _make_sbatch_string(
        command="python -m emotic_mm.cli train",
        folder=str(tmp_path / "submitit"),
        **executor._executor.parameters,
    )
    assert "#SBATCH --partition=gpu" in script and f"#SBATCH --time={timeout}" in script
    assert ("#SBATCH --gpus-per-node=1" in script) == (gpus == 1)


@pytest.mark.slow  # multirun sweep (joblib)
def test_joblib_runs_a_two_job_sweep(tmp_path):
    sweep, data = tmp_path / "sweep", tmp_path / "data"
    proc = _run(
        [
            EMOTIC_MM,
            "prepare",
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "data.synthetic.seed=1,2",
            "data.synthetic.images.train=4",
            "data.synthetic.images.val=2",
            "data.synthetic.images.test=2",
            "data.synthetic.defects_per_split=0",
            "data.synthetic.min_side=48",
            "data.synthetic.max_side=64",
            "data.workers=0",
            f"paths.data_dir={data}",
            f"hydra.sweep.dir={sweep}",
        ]
    )
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    launched = yaml.safe_load((sweep / "multirun.yaml").read_text())["hydra"]["launcher"]["_target_"]
    assert launched.endswith("JoblibLauncher")
    for job, seed in ((0, 1), (1, 2)):
        manifest = json.loads((data / "prepared" / f"synthetic_seed{seed}" / "manifest.json").read_text())
        assert manifest["synthetic"]["seed"] == seed
        assert json.loads((sweep / str(job) / "run.json").read_text())["seed"] == seed
