import numpy as np
import pytest
import tifffile

from nanohet.errors import InputError
from nanohet.image import SectionImage
from nanohet.io.ometiff import read_ome_tiff, write_ome_tiff


def test_round_trip_keeps_channels_spacing_origin(tmp_path):
    data = np.random.default_rng(0).integers(0, 4000, (3, 17, 23)).astype(np.uint16)
    img = SectionImage(data, ["DAPI", "CD31", "NP"], (0.65, 0.7), (1200.5, -30.0))
    write_ome_tiff(tmp_path / "a.ome.tif", img)
    back = read_ome_tiff(tmp_path / "a.ome.tif")
    assert back.channels == ["DAPI", "CD31", "NP"]
    assert back.spacing == pytest.approx((0.65, 0.7))
    assert back.origin == pytest.approx((1200.5, -30.0))
    np.testing.assert_array_equal(back.data, data)
    xml = tifffile.TiffFile(tmp_path / "a.ome.tif").ome_metadata
    assert 'PhysicalSizeX="0.65"' in xml and 'Name="CD31"' in xml


def test_rgb_round_trip(tmp_path):
    data = np.random.default_rng(1).integers(0, 255, (3, 9, 11)).astype(np.uint8)
    write_ome_tiff(tmp_path / "he.ome.tif", SectionImage(data, ["R", "G", "B"], (0.5, 0.5)))
    back = read_ome_tiff(tmp_path / "he.ome.tif")
    assert back.channels == ["R", "G", "B"]
    np.testing.assert_array_equal(back.data, data)


def test_writes_are_byte_identical(tmp_path):
    img = SectionImage(np.arange(60, dtype=np.uint16).reshape(1, 6, 10), ["a"], (1.0, 1.0))
    write_ome_tiff(tmp_path / "1.ome.tif", img)
    write_ome_tiff(tmp_path / "2.ome.tif", img)
    assert (tmp_path / "1.ome.tif").read_bytes() == (tmp_path / "2.ome.tif").read_bytes()


def test_plain_tiff_needs_a_pixel_size(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.zeros((2, 8, 8), np.uint16))
    with pytest.raises(InputError, match="no pixel size"):
        read_ome_tiff(path)
    img = read_ome_tiff(path, pixel_size_um=2.0, channel_names=["DAPI", "CD31"])
    assert img.spacing == (2.0, 2.0) and img.channels == ["DAPI", "CD31"]


def test_conflicting_pixel_size_and_channel_names_are_errors(tmp_path):
    write_ome_tiff(tmp_path / "a.ome.tif", SectionImage(np.zeros((2, 4, 4), np.uint16), ["x", "y"], (1.0, 1.0)))
    with pytest.raises(InputError, match="sample sheet says 2"):
        read_ome_tiff(tmp_path / "a.ome.tif", pixel_size_um=2.0)
    with pytest.raises(InputError, match="differ"):
        read_ome_tiff(tmp_path / "a.ome.tif", channel_names=["DAPI", "CD31"])


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "broken.ome.tif"
    bad.write_bytes(b"not a tiff at all")
    with pytest.raises(InputError, match="broken.ome.tif"):
        read_ome_tiff(bad)
