import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nanohet.demo.cohort import generate_sample
from nanohet.demo.phantom import PhantomParams

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
IMZML = DATA / "imzml"


def section_settings(**kw):
    """Optimiser settings of a section edge: the defaults of nanohet.settings.EdgeSettings with ``kw`` changed."""
    from nanohet.settings import EdgeSettings

    return EdgeSettings.from_dict(kw).optimiser()


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
    record = generate_sample("s1_T1", outputs, root / "truth", tiny_params())
    return {"outputs": outputs, "truth_dir": root / "truth", "record": record, "root": root}


# ----------------------------------------------------------------------------- workflow runs
SAMPLES = [("a01", "liposomal"), ("b01", "thermosensitive")]
MODALITY_FILES = {"fluorescence": "fluorescence.ome.tif", "he": "he.ome.tif", "msi": "msi.imzML",
                  "volume": "volume.nii.gz"}
STANDARD_LEVELS = (0.0, 1.0, 3.0, 8.0, 20.0)  # µg/g doxorubicin of the tiny cohort's simulated standards
# samples with some of the modalities only (a study is any mix): MSI and a volume without a fluorescence section,
# and a fluorescence section without MSI
PARTIAL = [("c01", "liposomal", ("msi", "volume")), ("d01", "thermosensitive", ("fluorescence",))]


def snakemake(workdir, *args, check=True, env=None):
    """Run the repository's workflow on the project in ``workdir`` (made by :func:`write_cohort`)."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(workdir / "config" / "config.yaml"), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env)
    if check and res.returncode != 0:
        raise AssertionError(f"snakemake failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}")
    return res


def nanohet(*args, cwd=None, check=False):
    """The ``nanohet`` command line (as ``python -m nanohet.cli``)."""
    res = subprocess.run([sys.executable, "-m", "nanohet.cli", *map(str, args)], capture_output=True, text=True,
                         cwd=cwd)
    if check and res.returncode != 0:
        raise AssertionError(f"nanohet {' '.join(map(str, args))} failed ({res.returncode}):\n"
                             f"{res.stdout[-3000:]}\n{res.stderr[-6000:]}")
    return res


def write_cohort(workdir, samples=SAMPLES, partial=()):
    """A project folder made by ``nanohet init`` holding a tiny demo cohort (1.6 mm tumours); its paths are
    relative to the folder. ``samples`` have every modality, ``partial`` ``(subject, group, modalities)`` only
    those listed. Returns the config."""
    nanohet("init", workdir, check=True)
    path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["demo"]["enabled"] = True
    config["demo"]["phantom"].update(tumour_diameter_mm=1.6, margin_mm=0.25)
    path.write_text(yaml.safe_dump(config))
    rows = [(workdir / "config" / "samples.tsv").read_text().rstrip("\n") + "\tregions"]
    columns = rows[0].split("\t")
    # a region drawn (as in QuPath) on the first sample's fluorescence section: a square of 250 px at its centre
    square = [[400, 400], [650, 400], [650, 650], [400, 650], [400, 400]]
    (workdir / "drawn.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [square]},
         "properties": {"classification": {"name": "drawn core"}}}]}))
    for k, (subject, group, modalities) in enumerate([(*s, tuple(MODALITY_FILES)) for s in samples] + list(partial)):
        for modality, name in ((m, MODALITY_FILES[m]) for m in modalities):
            row = {"subject": subject, "group": group, "tumour": "T1", "modality": modality,
                   "path": f"results/demo/data/{subject}_T1/{name}",
                   "mask": f"results/demo/data/{subject}_T1/volume_mask.nii.gz" if modality == "volume" else "",
                   "regions": "drawn.geojson" if k == 0 and modality == "fluorescence" else ""}
            rows.append("\t".join(row.get(c, "") for c in columns))
    for i, level in enumerate(STANDARD_LEVELS):
        row = {"modality": "msi_standard", "path": f"results/demo/data/standards/level_{i}.imzML",
               "analyte": "doxorubicin", "concentration": str(level)}
        rows.append("\t".join(row.get(c, "") for c in columns))
    # an unlabelled control section: the nanoparticle channel's autofluorescence, subtracted from every sample
    row = {"modality": "fluorescence_control", "path": "results/demo/data/controls/control_1.ome.tif"}
    rows.append("\t".join(row.get(c, "") for c in columns))
    (workdir / "config" / "samples.tsv").write_text("\n".join(rows) + "\n")
    return config


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """The tiny cohort run once with 2 cores by ``nanohet run`` in a project folder outside the repository,
    plus its report (shared by the workflow and archive tests)."""
    workdir = tmp_path_factory.mktemp("project")
    assert not workdir.resolve().is_relative_to(REPO)
    write_cohort(workdir, partial=PARTIAL)
    run = nanohet("run", "--cores", "2", cwd=workdir, check=True)
    snakemake(workdir, "--report", "results/report.html")
    return workdir, run


# ----------------------------------------------------------------------------- one-edge registration through the steps
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def register_onto_fluorescence(modality, source, fluorescence, masks, registration, out_transform, out_registered,
                               out_qc, sample="s1_T1", **kw):
    """:func:`nanohet.steps.register.one_edge` with the repository config's microscopy and quantify sections."""
    from nanohet.steps.register import one_edge

    one_edge(modality, source, fluorescence, masks, registration, CONFIG["microscopy"], CONFIG["quantify"],
             out_transform, out_registered, out_qc, sample=sample, **kw)
