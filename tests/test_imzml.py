import shutil
import warnings

import numpy as np
import pytest
from pyimzml.ImzMLParser import ImzMLParser

from conftest import IMZML
from nanohet.errors import InputError
from nanohet.io.imzml import ImzMLWriter, deterministic_uuid, read_imzml_index


def _pyimzml(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ImzMLParser(str(path))


def _write_processed(path, rng, n=12, mode="processed"):
    coords = np.array([(x + 1, y + 1) for y in range(3) for x in range(4)])[:n]
    lengths = rng.integers(0, 9, n)
    mzs = np.concatenate([np.sort(rng.uniform(100, 900, k)) for k in lengths])
    ints = rng.uniform(0, 1000, mzs.size).astype(np.float32)
    with ImzMLWriter(path, 25.0, mode, uuid=deterministic_uuid("t", 1)) as w:
        w.add_spectra(coords[:5], ints[: lengths[:5].sum()], mzs[: lengths[:5].sum()], lengths[:5])
        w.add_spectra(coords[5:], ints[lengths[:5].sum():], mzs[lengths[:5].sum():], lengths[5:])
    return coords, lengths, mzs, ints


def test_writer_output_reads_back_identically_with_pyimzml(tmp_path):
    rng = np.random.default_rng(0)
    coords, lengths, mzs, ints = _write_processed(tmp_path / "p.imzML", rng)
    p = _pyimzml(tmp_path / "p.imzML")
    starts = np.concatenate([[0], np.cumsum(lengths)])
    for i in range(len(coords)):
        mz_i, int_i = p.getspectrum(i)
        np.testing.assert_array_equal(mz_i, mzs[starts[i]:starts[i + 1]])
        np.testing.assert_array_equal(int_i, ints[starts[i]:starts[i + 1]])
        assert p.coordinates[i][:2] == tuple(coords[i])
    idx = read_imzml_index(tmp_path / "p.imzML")
    assert idx.pixel_size == (25.0, 25.0) and not idx.continuous
    assert idx.uuid == deterministic_uuid("t", 1).replace("-", "")


def test_continuous_writer(tmp_path):
    axis = np.linspace(100, 200, 7)
    block = np.arange(14, dtype=np.float32).reshape(2, 7)
    with ImzMLWriter(tmp_path / "c.imzML", 10.0, "continuous", uuid=deterministic_uuid(2), mz_axis=axis) as w:
        w.add_spectra([(1, 1), (2, 1)], block)
    idx = read_imzml_index(tmp_path / "c.imzML")
    assert idx.continuous
    mz, it = _pyimzml(tmp_path / "c.imzML").getspectrum(1)
    np.testing.assert_array_equal(mz, axis)
    np.testing.assert_array_equal(it, block[1])


def test_real_files_are_indexed():
    m2 = read_imzml_index(IMZML / "pym2aia" / "test.imzML")
    assert m2.pixel_size == (20.0, 20.0) and m2.continuous and m2.n_spectra == 20
    assert m2.mz_dtype == np.float64 and m2.int_dtype == np.float32
    sph = read_imzml_index(IMZML / "metaspace_spheroid" / "Untreated_3_434_tiny.imzML")
    assert sph.pixel_size is None and not sph.continuous
    assert sph.mz_lengths.min() == 946 and sph.mz_lengths.max() == 1128
    assert sph.uuid == "f1da2b10506649deb9a3243075247448"


@pytest.fixture
def example_copy(tmp_path):
    for f in (IMZML / "pyimzml_example").glob("Example_Processed.*"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path / "Example_Processed.imzML"


def test_truncated_ibd_is_rejected(example_copy):
    ibd = example_copy.with_suffix(".ibd")
    ibd.write_bytes(ibd.read_bytes()[:-100])
    with pytest.raises(InputError, match="truncated"):
        read_imzml_index(example_copy)


def test_uuid_mismatch_is_rejected(example_copy):
    ibd = example_copy.with_suffix(".ibd")
    data = bytearray(ibd.read_bytes())
    data[:16] = bytes(16)
    ibd.write_bytes(bytes(data))
    with pytest.raises(InputError, match="UUID"):
        read_imzml_index(example_copy)


def test_missing_ibd_is_rejected(example_copy):
    example_copy.with_suffix(".ibd").unlink()
    with pytest.raises(InputError, match="missing"):
        read_imzml_index(example_copy)


def test_ibd_extension_in_any_case(example_copy):
    example_copy.with_suffix(".ibd").rename(example_copy.with_suffix(".IBD"))
    assert read_imzml_index(example_copy).n_spectra == 9


def test_garbage_xml_is_rejected(example_copy):
    example_copy.write_text("<mzML><unclosed>")
    with pytest.raises(InputError, match="malformed XML|not a valid imzML"):
        read_imzml_index(example_copy)


def test_entity_declarations_are_refused(example_copy):
    text = example_copy.read_text(encoding="iso-8859-1")
    head, rest = text.split("\n", 1)
    example_copy.write_text(head + '\n<!DOCTYPE mzML [<!ENTITY x "xxxxxxxx">]>\n' + rest, encoding="iso-8859-1")
    with pytest.raises(InputError, match="ENTITY"):
        read_imzml_index(example_copy)


def test_mismatched_array_lengths_are_rejected(example_copy):
    text = example_copy.read_text(encoding="iso-8859-1")
    marker = 'name="external array length" value="8399"'
    assert marker in text
    example_copy.write_text(text.replace(marker, 'name="external array length" value="8398"', 1),
                            encoding="iso-8859-1")
    with pytest.raises(InputError, match="m/z values"):
        read_imzml_index(example_copy)
