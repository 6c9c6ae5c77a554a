"""Cluster submission through a real single-node Slurm (see slurm_cluster.py).

The demo workflow on a one-sample cohort runs once locally and once with --profile profiles/slurm;
every job of the second run must go through sbatch, and every table must equal the local run's
byte for byte. Skipped, with the reason, only where the cluster cannot be started (not root, no
apt-get); in CI (CI=true) that is a failure instead.
"""
import os
import re
import sys
from pathlib import Path

import pytest

from nanohet.repro.verify import same_result

from conftest import REPO, snakemake, write_cohort
from slurm_cluster import SlurmCluster, missing_reason

pytestmark = pytest.mark.slurm
COHORT = [("a01", "liposomal")]


@pytest.fixture(scope="module")
def cluster():
    reason = missing_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the Slurm test must run in CI but cannot: {reason}")
        pytest.skip(f"no single-node Slurm cluster here: {reason}")
    with SlurmCluster() as c:
        yield c


def _tables(workdir: Path) -> list[Path]:
    r = workdir / "results"
    return sorted(p.relative_to(workdir) for p in list((r / "tables").glob("*.tsv"))
                  + list((r / "quantify").rglob("*.tsv")) + list((r / "validation").rglob("*.tsv")))


def test_workflow_through_slurm_matches_local_run(cluster, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "slurm"
    write_cohort(local, COHORT)
    write_cohort(remote, COHORT)
    snakemake(local, "--cores", "2")
    res = subprocess_env_run(remote, cluster)

    out = res.stdout + res.stderr
    submissions = re.findall(r"submitted with SLURM jobid (\d+)", out)
    completed = cluster.job_names()
    # every job (or group of small per-sample jobs) went through sbatch and ran under slurmctld
    assert len(submissions) >= 8, out[-3000:]
    assert len(completed) == len(submissions)
    assert "Group job per_sample_report" in out

    tables = _tables(local)
    assert len(tables) >= 7 and tables == _tables(remote)
    for rel in tables:
        assert same_result(local / rel, remote / rel), f"{rel} differs between local and Slurm"


def subprocess_env_run(workdir, cluster):
    import subprocess

    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(workdir / "config" / "config.yaml"),
           "--profile", str(REPO / "profiles" / "slurm"),
           "--slurm-init-seconds-before-status-checks", "1", "--slurm-no-account", "--jobs", "4",
           "--latency-wait", "5"]
    res = subprocess.run(cmd, cwd=workdir, env=cluster.env(), capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        raise AssertionError(f"Slurm run failed:\n{res.stdout[-3000:]}\n{res.stderr[-4000:]}\n{cluster.logs()}")
    return res
