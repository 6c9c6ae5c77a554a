"""The pre-run input check (nanohet.io.check): every problem of a study at once, from metadata, by the command
and by the workflow before any job."""

import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import tifffile
import yaml

from conftest import DATA, IMZML, REPO, nanohet, snakemake
from nanohet.image import SectionImage
from nanohet.io.ometiff import write_ome_tiff

COLUMNS = ["subject", "group", "tumour", "modality", "path", "pixel_size", "mask", "channels"]


def _study(tmp_path, rows, **msi):
    """A real-data study folder: config (demo off, analytes in ``msi``) and a sample sheet of ``rows``."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["demo"]["enabled"] = False
    config["samples"] = "config/samples.tsv"
    config["msi"].update(msi)
    config["msi"] = {k: v for k, v in config["msi"].items() if v is not None}  # None: the default (the schema)
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    lines = ["\t".join(COLUMNS)] + ["\t".join(str(r.get(c, "")) for c in COLUMNS) for r in rows]
    (tmp_path / "config" / "samples.tsv").write_text("\n".join(lines) + "\n")
    return tmp_path


def _files(tmp_path):
    good = tmp_path / "good.ome.tif"
    write_ome_tiff(good, SectionImage(np.zeros((4, 16, 16), np.uint16), ["DAPI", "CD31", "NP", "F4/80"], (2.0, 2.0)))
    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((4, 16, 16), np.uint16), photometric="minisblack")
    write_ome_tiff(tmp_path / "nocd31.ome.tif", SectionImage(np.zeros((3, 16, 16), np.uint16), ["DAPI", "NP", "F4/80"],
                                                             (2.0, 2.0)))
    tifffile.imwrite(tmp_path / "labels.tif", np.arange(16 * 16, dtype=np.uint16).reshape(16, 16))
    tifffile.imwrite(tmp_path / "labels_cropped.tif", np.ones((15, 16), np.uint16))
    for f in (IMZML / "pyimzml_example").glob("Example_Processed.*"):
        shutil.copy(f, tmp_path / f.name)
    sts = DATA / "volumes" / "ibsi_sts_002"
    shutil.copy(sts / "CT_image.nii.gz", tmp_path / "ct.nii.gz")
    mask = sitk.ReadImage(str(sts / "CT_mask.nii.gz"))
    mask.SetOrigin(tuple(np.array(mask.GetOrigin()) + [0, 3.0, 0]))
    sitk.WriteImage(mask, str(tmp_path / "ct_mask_shifted.nii.gz"))
    return tmp_path


ANALYTES = {"analytes": [{"name": "inside", "mz": 500.0, "ppm": 10, "role": "drug"},
                         {"name": "heavy", "mz": 1200.0, "ppm": 10, "role": "other"}],
            "internal_standard": None, "normalisation": "tic", "lock_mass": None}


def test_every_problem_is_listed_at_once_by_the_command_and_the_workflow(tmp_path):
    d = _files(tmp_path)
    rows = [
        {"subject": "a1", "group": "g", "tumour": "T1", "modality": "fluorescence", "path": d / "plain.tif",
         "channels": "DAPI,CD31,NP,F4/80"},
        {"subject": "a1", "group": "g", "tumour": "T1", "modality": "msi", "path": d / "Example_Processed.imzML"},
        {"subject": "a1", "group": "g", "tumour": "T1", "modality": "labels", "path": d / "labels_cropped.tif"},
        {"subject": "a2", "group": "g", "tumour": "T1", "modality": "fluorescence", "path": d / "nocd31.ome.tif"},
        {"subject": "a2", "group": "g", "tumour": "T1", "modality": "msi", "path": d / "missing.imzML"},
        {"subject": "a2", "group": "g", "tumour": "T1", "modality": "ct", "path": d / "ct.nii.gz",
         "mask": d / "ct_mask_shifted.nii.gz"},
    ]
    study = _study(tmp_path, rows, **ANALYTES)
    res = nanohet("check", cwd=study)
    assert res.returncode == 1
    out = res.stderr
    assert "6 problem(s)" in out
    assert "labels_cropped.tif: label image of 15 x 16 pixels, but the fluorescence section has 16 x 16" in out
    assert "plain.tif: no pixel size" in out  # a plain TIFF without a sheet pixel size
    assert "channels {'vessels': 'CD31'} (microscopy.channels) are not in the file" in out
    assert "analyte heavy (m/z 1200" in out and "outside the acquired m/z range 100.0833-799.9167" in out
    assert "analyte inside" not in out
    assert "missing.imzML: file not found" in out
    assert "not on the volume's grid: origin" in out
    # the workflow refuses the study when it builds its graph: snakemake -n fails before any job, same list
    dry = snakemake(study, "-n", check=False)
    assert dry.returncode != 0 and "6 problem(s) with the inputs" in dry.stderr + dry.stdout


def test_a_sound_study_passes(tmp_path):
    d = _files(tmp_path)
    rows = [{"subject": "a1", "group": "g", "tumour": "T1", "modality": "fluorescence", "path": d / "good.ome.tif"},
            {"subject": "a1", "group": "g", "tumour": "T1", "modality": "msi", "path": d / "Example_Processed.imzML"},
            {"subject": "a1", "group": "g", "tumour": "T1", "modality": "labels", "path": d / "labels.tif"}]
    res = nanohet("check", cwd=_study(tmp_path, rows, **{**ANALYTES, "analytes": ANALYTES["analytes"][:1]}))
    assert res.returncode == 0, res.stderr
    assert "3 inputs checked: no problem" in res.stdout
