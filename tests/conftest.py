import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nanohet.phantom import PhantomParams, generate_sample

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
IMZML = DATA / "imzml"


def tiny_params(**kw) -> PhantomParams:
    """A small tumour (about 1.2 mm) that simulates in a couple of seconds."""
    base = dict(seed=11, tumour_diameter_mm=1.2, margin_mm=0.2, msi_pixel_um=30.0)
    base.update(kw)
    return PhantomParams(**base)


def sample_outputs(folder: Path) -> dict:
    return {
        "fluorescence": folder / "fluorescence.ome.tif", "he": folder / "he.ome.tif",
        "msi": folder / "msi.imzML", "volume": folder / "volume.nii.gz",
        "volume_mask": folder / "volume_mask.nii.gz",
    }


@pytest.fixture(scope="session")
def tiny_sample(tmp_path_factory):
    """One simulated sample (all modalities + truth), shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("tiny")
    outputs = sample_outputs(root / "data")
    record = generate_sample("s1_T1", outputs, root / "truth", tiny_params(),
                             thresholds={"doxorubicin": 2.0})
    return {"outputs": outputs, "truth_dir": root / "truth", "record": record, "root": root}


# ----------------------------------------------------------------------------- workflow runs
SAMPLES = [("a01", "liposomal"), ("b01", "thermosensitive")]
MODALITY_FILES = {"fluorescence": "fluorescence.ome.tif", "he": "he.ome.tif", "msi": "msi.imzML",
                  "volume": "volume.nii.gz"}


def snakemake(workdir, *args, check=True, env=None):
    """Run the repository's workflow in ``workdir`` with the config written by :func:`write_cohort`."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(workdir / "config" / "config.yaml"), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env)
    if check and res.returncode != 0:
        raise AssertionError(f"snakemake failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}")
    return res


def write_cohort(workdir, samples=SAMPLES):
    """A tiny demo cohort (1.6 mm tumours) with its own config and sample sheet in ``workdir``."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["demo"]["phantom"].update(tumour_diameter_mm=1.6, margin_mm=0.25)
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    rows = ["subject\tgroup\ttumour\tmodality\tpath\tpixel_size\tmask\tchannels"]
    for subject, group in samples:
        for modality, name in MODALITY_FILES.items():
            mask = f"results/demo/data/{subject}_T1/volume_mask.nii.gz" if modality == "volume" else ""
            rows.append(f"{subject}\t{group}\tT1\t{modality}\tresults/demo/data/{subject}_T1/{name}\t\t{mask}\t")
    (workdir / "config" / "samples.tsv").write_text("\n".join(rows) + "\n")
    return config


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """The tiny cohort run once with 2 cores, plus its report (shared by workflow and archive tests)."""
    workdir = tmp_path_factory.mktemp("wf")
    write_cohort(workdir)
    run = snakemake(workdir, "--cores", "2")
    snakemake(workdir, "--report", "results/report.html")
    return workdir, run
