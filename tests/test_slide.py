"""Whole slides read in pieces (nanohet.io.slide): windows, pyramid levels, averaged blocks, the working resolution."""

import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from nanohet.errors import InputError
from nanohet.io.ometiff import read_ome_tiff
from nanohet.io.slide import Slide


def write_pyramid(path, data, spacing_um, names, levels=2, tile=(128, 128), compression="zlib"):
    """A pyramidal OME-TIFF (sub-resolutions in SubIFDs, each a 2 x 2 block mean of the level above), tiled."""
    opts = dict(tile=tile, compression=compression, photometric="minisblack")
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(data, subifds=levels, metadata={"axes": "CYX", "PhysicalSizeX": spacing_um,
                                                  "PhysicalSizeY": spacing_um, "Channel": {"Name": names}}, **opts)
        level = data
        for _ in range(levels):
            h, w = level.shape[1] // 2 * 2, level.shape[2] // 2 * 2
            level = level[:, :h, :w].reshape(level.shape[0], h // 2, 2, w // 2, 2).mean(axis=(2, 4)).astype(data.dtype)
            tif.write(level, subfiletype=1, **opts)
    return path


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory):
    rng = np.random.default_rng(11)
    data = rng.integers(0, 4000, size=(3, 777, 1043), dtype=np.uint16)  # not a multiple of the tile size
    path = write_pyramid(tmp_path_factory.mktemp("slide") / "slide.ome.tif", data, 0.5, ["DAPI", "CD31", "NP"])
    return path, data


def test_windows_equal_the_full_read(pyramid):
    path, data = pyramid
    rng = np.random.default_rng(3)
    with Slide(path) as slide:
        assert slide.channels == ["DAPI", "CD31", "NP"]
        assert slide.level_shapes == [(777, 1043), (388, 521), (194, 260)]
        for _ in range(20):
            y0, x0 = rng.integers(0, 700), rng.integers(0, 1000)
            y1, x1 = y0 + rng.integers(1, 300), x0 + rng.integers(1, 400)
            np.testing.assert_array_equal(slide.read_window(0, y0, y1, x0, x1),
                                          data[:, y0:min(y1, 777), x0:min(x1, 1043)])
        level1 = tifffile.TiffFile(path).series[0].levels[1].asarray()
        np.testing.assert_array_equal(slide.read_window(1, 0, 388, 0, 521), level1)


def test_the_level_is_chosen_by_resolution(pyramid):
    path, data = pyramid
    with Slide(path) as slide:
        assert [slide.level_for(s) for s in (None, 0.3, 0.5, 0.99, 1.0, 1.9, 2.0, 50.0)] == [0, 0, 0, 0, 1, 1, 2, 2]
        assert slide.level_spacing(1) == pytest.approx((0.5 * 1043 / 521, 0.5 * 777 / 388))
        img = slide.read_at(1.0)
        assert img.metadata["level"] == 1 and img.metadata["block"] == 1
        # the level's pixel [0, 0] averages base pixels [0, 2): its centre lies half a base pixel further
        assert img.origin == pytest.approx(((1043 / 521 - 1) / 2 * 0.5, (777 / 388 - 1) / 2 * 0.5))
        full = slide.read_at(None)
        np.testing.assert_array_equal(full.data, read_ome_tiff(path).data)
        assert full.spacing == (0.5, 0.5) and full.origin == (0.0, 0.0)


def test_blocks_are_averaged_below_the_coarsest_level(pyramid, monkeypatch):
    """6 µm from a pyramid whose coarsest level is ~2 µm: 3 x 3 blocks of that level, read in bands of rows."""
    import nanohet.io.slide as slide_module

    monkeypatch.setattr(slide_module, "BAND_BYTES", 20_000)  # many bands
    path, _ = pyramid
    with Slide(path) as slide:
        level2 = slide.read_window(2, 0, 194, 0, 260).astype(np.float64)
        img = slide.read_at(6.5)
        assert img.metadata == {"level": 2, "block": 3, "path": str(path)}
        expected = level2[:, :192, :258].reshape(3, 64, 3, 86, 3).mean(axis=(2, 4))
        np.testing.assert_allclose(img.data, expected, rtol=1e-6)
        sx = slide.level_spacing(2)[0]
        assert img.spacing[0] == pytest.approx(3 * sx)
        assert img.origin[0] == pytest.approx((3 * sx / 0.5 - 1) / 2 * 0.5)
        geometry = slide.geometry_at(6.5)
        assert geometry["shape"] == img.data.shape[1:] and geometry["spacing"] == img.spacing


def test_a_striped_tiff_without_pyramid(tmp_path):
    rng = np.random.default_rng(7)
    data = rng.normal(100, 20, size=(301, 257)).astype(np.float32)
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, data, rowsperstrip=13, compression="zlib")
    with pytest.raises(InputError, match="pixel size"):
        Slide(path)
    with Slide(path, pixel_size_um=0.25, channel_names=["DAPI"]) as slide:
        np.testing.assert_array_equal(slide.read_window(0, 12, 40, 3, 200)[0], data[12:40, 3:200])
        img = slide.read_at(1.0)  # 4 x 4 blocks of the only level
        np.testing.assert_allclose(img.data[0], data[:300, :256].reshape(75, 4, 64, 4).mean(axis=(1, 3)), rtol=1e-5)
        assert img.spacing == (1.0, 1.0) and img.origin == pytest.approx((0.375, 0.375))


def test_an_rgb_jpeg_slide(tmp_path):
    """A tiled JPEG RGB file, as scanners write brightfield slides: three channels R, G, B, windows as the full
    decode."""
    rng = np.random.default_rng(2)
    data = (rng.random((300, 420, 3)) * 255).astype(np.uint8)
    path = tmp_path / "he.tif"
    tifffile.imwrite(path, data, tile=(64, 64), compression="jpeg", photometric="rgb", resolution=(1e4 / 0.25,) * 2,
                     resolutionunit="CENTIMETER")
    full = tifffile.imread(path)
    with Slide(path) as slide:
        assert slide.channels == ["R", "G", "B"] and slide.spacing == pytest.approx((0.25, 0.25))
        np.testing.assert_array_equal(slide.read_window(0, 50, 170, 30, 301), np.moveaxis(full[50:170, 30:301], -1, 0))
        coarse = slide.read_at(1.0)  # 4 x 4 blocks, rounded back to 8-bit colour
        assert coarse.data.dtype == np.uint8 and coarse.channels == ["R", "G", "B"]
        expected = np.moveaxis(full, -1, 0).astype(float).reshape(3, 75, 4, 105, 4).mean(axis=(2, 4))
        np.testing.assert_array_equal(coarse.data, np.rint(expected).astype(np.uint8))


def test_masks_and_measures_at_a_working_resolution(tiny_sample, tmp_path):
    """The section steps on a pyramid at a working resolution give the masks at that pixel size, with the tissue
    area of the full-resolution masks."""
    from nanohet.steps.microscopy import preprocess
    from nanohet.steps.quantify import analysis_grid

    src = read_ome_tiff(tiny_sample["outputs"]["fluorescence"])
    path = write_pyramid(tmp_path / "pyramid.ome.tif", src.data, src.spacing[0], src.channels, levels=1, tile=(64, 64))
    settings = {"channels": {"nuclei": "DAPI", "vessels": "CD31", "nanoparticle": "NP"}}
    preprocess(str(path), settings, str(tmp_path / "native.ome.tif"), str(tmp_path / "native.tsv"))
    working = 2 * src.spacing[0]
    preprocess(str(path), {**settings, "working_pixel_um": working}, str(tmp_path / "coarse.ome.tif"),
               str(tmp_path / "coarse.tsv"))
    coarse = read_ome_tiff(tmp_path / "coarse.ome.tif")
    assert coarse.spacing == pytest.approx((working, working), rel=0.01)
    native_area = pd.read_csv(tmp_path / "native.tsv", sep="\t")["tissue_area_mm2"].iloc[0]
    coarse_area = pd.read_csv(tmp_path / "coarse.tsv", sep="\t")["tissue_area_mm2"].iloc[0]
    assert coarse_area == pytest.approx(native_area, rel=0.03)
    analysis_grid(str(path), 5 * working, str(tmp_path / "grid.json"), working_um=working)
    grid = json.loads((tmp_path / "grid.json").read_text())  # the grid over the working-resolution masks
    assert grid["factor"] == 5 and grid["shape"] == [coarse.data.shape[1] // 5, coarse.data.shape[2] // 5]
