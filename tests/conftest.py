from pathlib import Path

import pytest

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
