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


def test_the_sample_sheet_overrides_the_file_with_a_warning(tmp_path, caplog):
    """The sheet is only for overriding: its pixel size and channel names win, with a warning where they
    disagree with the file's; a wrong number of names is an error."""
    write_ome_tiff(tmp_path / "a.ome.tif", SectionImage(np.zeros((2, 4, 4), np.uint16), ["x", "y"], (1.0, 1.0)))
    with caplog.at_level("WARNING", logger="nanohet"):
        img = read_ome_tiff(tmp_path / "a.ome.tif", pixel_size_um=2.0, channel_names=["DAPI", "CD31"])
    assert img.spacing == (2.0, 2.0) and img.channels == ["DAPI", "CD31"]
    assert "says 1 x 1 µm/pixel, the sample sheet 2" in caplog.text and "override the file's ['x', 'y']" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="nanohet"):
        assert read_ome_tiff(tmp_path / "a.ome.tif", pixel_size_um=1.005).spacing == (1.005, 1.005)
    assert not caplog.text  # within 1 %: no warning
    with pytest.raises(InputError, match="3 channel names in the sample sheet for the file's 2 channels"):
        read_ome_tiff(tmp_path / "a.ome.tif", channel_names=["a", "b", "c"])


def _qptiff(path, names, um_per_px):
    with tifffile.TiffWriter(path) as w:
        for name in names:
            desc = ('<?xml version="1.0" encoding="utf-16"?>\n<PerkinElmer-QPI-ImageDescription>\n<DescriptionVersion>2'
                    f'</DescriptionVersion>\n<ImageType>FullResolution</ImageType>\n<Name>{name}</Name>\n'
                    '</PerkinElmer-QPI-ImageDescription>')
            w.write(np.full((24, 32), len(name), np.uint16), description=desc, software="PerkinElmer-QPI",
                    resolution=(1e4 / um_per_px, 1e4 / um_per_px), resolutionunit="CENTIMETER", metadata=None)


def test_vendor_metadata_is_read(tmp_path, caplog):
    """QPTIFF channel names and resolution, SVS microns per pixel, TIFF resolution in pixels per cm and ImageJ's
    micron unit are read from the file; a typed value that disagrees is used with a warning."""
    _qptiff(tmp_path / "v.qptiff", ["DAPI", "CD31", "NP", "F4/80"], 0.4961)
    img = read_ome_tiff(tmp_path / "v.qptiff")
    assert img.channels == ["DAPI", "CD31", "NP", "F4/80"] and img.spacing == pytest.approx((0.4961, 0.4961))
    assert img.channel("NP")[0, 0] == 2
    with caplog.at_level("WARNING", logger="nanohet"):
        assert read_ome_tiff(tmp_path / "v.qptiff", pixel_size_um=0.5).spacing == (0.5, 0.5)
        assert read_ome_tiff(tmp_path / "v.qptiff", pixel_size_um=1.0).spacing == (1.0, 1.0)
    assert caplog.text.count("QPTIFF resolution tags says") == 1  # 0.5 is within 1 % of 0.4961; 1.0 is not
    tifffile.imwrite(tmp_path / "s.svs", np.zeros((40, 50, 3), np.uint8), photometric="rgb",
                     description="Aperio Image Library v12.0.15 \n50x40 (256x256) JPEG/RGB Q=70|AppMag = 20|MPP = 0.2527")
    svs = read_ome_tiff(tmp_path / "s.svs")
    assert svs.spacing == pytest.approx((0.2527, 0.2527)) and svs.channels == ["R", "G", "B"]
    tifffile.imwrite(tmp_path / "cm.tif", np.zeros((2, 8, 8), np.uint16), resolution=(1e4 / 0.65, 1e4 / 0.65),
                     resolutionunit="CENTIMETER")
    assert read_ome_tiff(tmp_path / "cm.tif").spacing == pytest.approx((0.65, 0.65))
    tifffile.imwrite(tmp_path / "ij.tif", np.zeros((8, 8), np.uint16), imagej=True, resolution=(1 / 0.325, 1 / 0.325),
                     metadata={"unit": "micron"})
    assert read_ome_tiff(tmp_path / "ij.tif").spacing == pytest.approx((0.325, 0.325))
    tifffile.imwrite(tmp_path / "inch.tif", np.zeros((8, 8), np.uint16), resolution=(72, 72), resolutionunit="INCH")
    with pytest.raises(InputError, match="no pixel size"):  # 72 dpi is a screen default, not a physical size
        read_ome_tiff(tmp_path / "inch.tif")


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "broken.ome.tif"
    bad.write_bytes(b"not a tiff at all")
    with pytest.raises(InputError, match="broken.ome.tif"):
        read_ome_tiff(bad)


def test_four_samples_are_channels_and_a_single_ome_channel_keeps_its_name(tmp_path):
    """A plain TIFF with 4 samples per pixel that are not colour is 4 channels (was read as RGB and the 4th
    dropped); RGBA drops its alpha; a one-channel OME-TIFF keeps its channel name."""
    four = np.arange(8 * 8 * 4, dtype=np.uint16).reshape(8, 8, 4)
    tifffile.imwrite(tmp_path / "four.tif", four, photometric="minisblack", planarconfig="contig")
    img = read_ome_tiff(tmp_path / "four.tif", pixel_size_um=1.0)
    assert img.channels == ["C0", "C1", "C2", "C3"] and np.array_equal(img.data[3], four[..., 3])
    rgba = np.zeros((8, 8, 4), np.uint8)
    tifffile.imwrite(tmp_path / "rgba.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    assert read_ome_tiff(tmp_path / "rgba.tif", pixel_size_um=1.0).channels == ["R", "G", "B"]
    write_ome_tiff(tmp_path / "one.ome.tif", SectionImage(np.zeros((1, 4, 4), np.uint16), ["CD31"], (1.0, 1.0)))
    assert read_ome_tiff(tmp_path / "one.ome.tif").channels == ["CD31"]
