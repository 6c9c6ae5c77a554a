"""AnnData files written to anndata's on-disk specification (nanohet.io.h5ad), checked element by element."""

import h5py
import numpy as np
import pandas as pd
import pytest

from nanohet.io.h5ad import read_h5ad_table, write_h5ad


def _encoding(obj):
    return obj.attrs["encoding-type"], obj.attrs["encoding-version"]


def _utf8_strings(ds):
    info = h5py.check_string_dtype(ds.dtype)
    return info is not None and info.encoding == "utf-8" and info.length is None  # variable length


@pytest.fixture
def written(tmp_path):
    rng = np.random.default_rng(4)
    n = 57
    obs = pd.DataFrame({"sample": ["m1_T1"] * 30 + ["m2_T1"] * 27, "area_um2": rng.uniform(50, 300, n),
                        "region": rng.choice(["viable", "necrosis"], n), "macrophage": rng.random(n) < 0.2,
                        "cell": np.arange(1, n + 1), "F4/80_cell": rng.random(n)})
    obs.loc[3, "region"] = None  # a missing value: code -1
    X = rng.gamma(2.0, 100.0, size=(n, 3))
    spatial = rng.uniform(0, 5000, size=(n, 2))
    path = tmp_path / "cells.h5ad"
    write_h5ad(path, X, ["DAPI", "F4/80", "doxorubicin"], obs, [f"m{i}" for i in range(n)], obsm={"spatial": spatial},
               uns={"spatial_unit": "um", "pixel_size_um": 0.5})
    return path, obs, X, spatial


def test_every_element_follows_the_specification(written):
    path, obs, X, spatial = written
    with h5py.File(path, "r") as f:
        assert _encoding(f) == ("anndata", "0.1.0")
        assert set(f) == {"X", "obs", "var", "obsm", "uns", "layers", "varm", "obsp", "varp"}
        assert _encoding(f["X"]) == ("array", "0.2.0") and f["X"].shape == (57, 3) and f["X"].dtype == np.float32
        for name, n in (("obs", 57), ("var", 3)):
            group = f[name]
            assert _encoding(group) == ("dataframe", "0.2.0")
            index = group[group.attrs["_index"]]
            assert _encoding(index) == ("string-array", "0.2.0") and _utf8_strings(index) and index.shape == (n,)
            order = list(group.attrs["column-order"])
            assert set(order) | {group.attrs["_index"]} == set(group)  # every entry is a column or the index
            for col in order:
                values = group[col] if isinstance(group[col], h5py.Dataset) else group[col]["codes"]
                assert values.shape[0] == n
        assert list(f["obs"].attrs["column-order"]) == [c.replace("/", "_") for c in obs.columns]
        assert isinstance(f["obs/F4_80_cell"], h5py.Dataset)  # not a group F4 holding 80_cell
        region = f["obs/region"]
        assert _encoding(region) == ("categorical", "0.2.0") and region.attrs["ordered"] == np.False_
        assert np.issubdtype(region["codes"].dtype, np.signedinteger) and region["codes"][3] == -1
        assert _encoding(region["categories"]) == ("string-array", "0.2.0") and _utf8_strings(region["categories"])
        assert _encoding(f["obs/area_um2"]) == ("array", "0.2.0") and f["obs/macrophage"].dtype == np.bool_
        assert _encoding(f["obsm"]) == ("dict", "0.1.0") and _encoding(f["obsm/spatial"]) == ("array", "0.2.0")
        assert _encoding(f["uns/spatial_unit"]) == ("string", "0.2.0") and _utf8_strings(f["uns/spatial_unit"])
        assert _encoding(f["uns/pixel_size_um"]) == ("numeric-scalar", "0.2.0")


def test_the_table_reads_back(written):
    path, obs, X, spatial = written
    table, obsm, uns = read_h5ad_table(path)
    assert list(table.index[:2]) == ["m0", "m1"]
    np.testing.assert_allclose(table[["DAPI", "F4/80", "doxorubicin"]].to_numpy(), X.astype(np.float32))
    np.testing.assert_array_equal(table["F4_80_cell"].to_numpy(), obs["F4/80_cell"].to_numpy())
    np.testing.assert_array_equal(obsm["spatial"], spatial)
    assert list(table["region"].iloc[:5]) == list(obs["region"].iloc[:5])
    np.testing.assert_array_equal(table["macrophage"].to_numpy(), obs["macrophage"].to_numpy())
    assert uns == {"spatial_unit": "um", "pixel_size_um": 0.5}


def test_inconsistent_shapes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="obs rows"):
        write_h5ad(tmp_path / "x.h5ad", np.zeros((3, 2)), ["a", "b"], pd.DataFrame({"c": [1, 2]}), ["1", "2", "3"])
    with pytest.raises(ValueError, match="unique"):
        write_h5ad(tmp_path / "x.h5ad", np.zeros((2, 1)), ["a"], pd.DataFrame({"c": [1, 2]}), ["1", "1"])
    assert not (tmp_path / "x.h5ad").exists()
