"""The streaming imzML index reader (nanohet.io.imzml_index): the same index as pyimzML on every test file, on
files of two writers and on variants of each writer quirk; the template reader equal to the reference stream
reader wherever it accepts a file; malformed files refused with the line."""

import re
import shutil
import warnings

import numpy as np
import pytest
from pyimzml.ImzMLParser import ImzMLParser

from conftest import IMZML
from nanohet.errors import InputError
from nanohet.io.imzml import ImzMLWriter, deterministic_uuid, read_imzml_index
from nanohet.io.imzml_index import _read_template, read_index, read_index_stream, unwrap_offsets

REAL = sorted(IMZML.glob("*/*.imzML"))


def _pyimzml(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ImzMLParser(str(path), ibd_file=None)


def _assert_same_as_pyimzml(raw, path):
    p = _pyimzml(path)
    np.testing.assert_array_equal(raw.coords, np.array(p.coordinates))
    for ours, theirs in (("mz_offsets", p.mzOffsets), ("mz_lengths", p.mzLengths),
                         ("int_offsets", p.intensityOffsets), ("int_lengths", p.intensityLengths)):
        np.testing.assert_array_equal(getattr(raw, ours), np.array(theirs, dtype=np.int64), err_msg=ours)
    assert (raw.mz_precision, raw.int_precision) == (p.mzPrecision, p.intensityPrecision)


def _both(path):
    """The reference reader's index, and the template reader's (None where it declines), checked equal."""
    stream = read_index_stream(path)
    template = _read_template(path)
    if template is not None:
        for field in ("coords", "mz_offsets", "mz_lengths", "int_offsets", "int_lengths"):
            np.testing.assert_array_equal(getattr(template, field), getattr(stream, field), err_msg=field)
        assert (template.mz_precision, template.int_precision, template.uuid, template.pixel_size) == \
            (stream.mz_precision, stream.int_precision, stream.uuid, stream.pixel_size)
    return stream, template


def _write_nanohet(path, n=40, seed=0, mode="processed"):
    rng = np.random.default_rng(seed)
    side = 7
    coords = np.array([(i % side + 1, i // side + 1) for i in range(n)])
    if mode == "continuous":
        axis = np.linspace(100, 900, 25)
        with ImzMLWriter(path, 15.0, mode, uuid=deterministic_uuid("c", seed), mz_axis=axis) as w:
            w.add_spectra(coords, rng.uniform(0, 1, (n, axis.size)).astype(np.float32))
        return path
    lengths = rng.integers(0, 12, n)
    mzs = np.concatenate([np.sort(rng.uniform(100, 900, k)) for k in lengths])
    with ImzMLWriter(path, 15.0, mode, uuid=deterministic_uuid("p", seed)) as w:
        w.add_spectra(coords, rng.uniform(0, 1, mzs.size).astype(np.float32), mzs, lengths)
    return path


def _write_pyimzml(path, n=30, seed=1):
    from pyimzml.ImzMLWriter import ImzMLWriter as PyWriter

    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with PyWriter(str(path), mode="processed") as w:
            for i in range(n):
                k = int(rng.integers(1, 10))
                w.addSpectrum(np.sort(rng.uniform(100, 900, k)), rng.uniform(0, 1, k), (i % 6 + 1, i // 6 + 1))
    return path


@pytest.fixture(params=["example_processed", "nanohet_processed", "nanohet_continuous", "pyimzml_writer"])
def source(request, tmp_path):
    """An imzML (and .ibd) from one writer, copied into tmp_path."""
    if request.param == "example_processed":
        for f in (IMZML / "pyimzml_example").glob("Example_Processed.*"):
            shutil.copy(f, tmp_path / f.name)
        return tmp_path / "Example_Processed.imzML"
    if request.param == "pyimzml_writer":
        return _write_pyimzml(tmp_path / "py.imzML")
    return _write_nanohet(tmp_path / "nh.imzML", mode=request.param.split("_")[1])


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.parent.name + "/" + p.name)
def test_real_files_give_pyimzml_index_with_both_readers(path):
    stream, template = _both(path)
    _assert_same_as_pyimzml(stream, path)
    assert template is not None  # every real file repeats one layout: the fast reader takes it


def test_writers_give_pyimzml_index_and_the_template_reader_takes_them(source):
    stream, template = _both(source)
    _assert_same_as_pyimzml(stream, source)
    assert template is not None and read_index(source).reader == "template"


# ----------------------------------------------------------------------------- writer quirks

def _rewrite(path, transform):
    text = path.read_bytes().decode("iso-8859-1")
    path.write_bytes(transform(text).encode("iso-8859-1"))
    return path


def _permuted(items, rng):
    return [items[i] for i in rng.permutation(len(items))]


def _shuffle_attributes(text, seed=3):
    rng = np.random.default_rng(seed)

    def shuffle(m):
        attrs = re.findall(r'\s+[\w:.-]+="[^"]*"', m.group(2))
        return m.group(1) + "".join(_permuted(attrs, rng)) + m.group(3)

    return re.sub(r'(<[\w:.-]+)((?:\s+[\w:.-]+="[^"]*")+)(\s*/?>)', shuffle, text)


def _prefix(text):
    body = re.sub(r"<(/?)(?!\?|!)([\w.-]+)([\s/>])", r"<\1mz:\2\3", text)
    body = body.replace("<mz:mzML", '<mz:mzML xmlns:mz="http://psi.hupo.org/ms/mzml"', 1)
    return re.sub(r'\sxmlns="http://psi.hupo.org/ms/mzml"', "", body, count=1)


def _comments(text, seed=4):
    rng = np.random.default_rng(seed)
    parts = re.split(r"(?<=>)(?=\s*<)", text)
    return "".join(p + ("<!-- a <spectrum> comment -->" if rng.random() < 0.2 and i > 1 else "")
                   for i, p in enumerate(parts))


def _whitespace(text, seed=5):
    rng = np.random.default_rng(seed)
    return re.sub(r'(\s)([\w:.-]+)="', lambda m: ("\n" + " " * int(rng.integers(0, 9))) + m.group(2)
                  + " " * int(rng.integers(0, 2)) + "=" + " " * int(rng.integers(0, 2)) + '"', text)


def _shuffle_cvparams(text, seed=6):
    rng = np.random.default_rng(seed)

    def shuffle(m):
        it = iter(_permuted(re.findall(r"<cvParam[^>]*/>", m.group(0)), rng))
        return re.sub(r"<cvParam[^>]*/>", lambda _: next(it), m.group(0))

    return re.sub(r"<(binaryDataArray|scan)\b.*?</\1>", shuffle, text, flags=re.S)


def _offsets_above_4gb(text):
    shift = 5 * 2 ** 32
    return re.sub(r'(accession="IMS:1000102"[^>]*value=")(\d+)"',
                  lambda m: f'{m.group(1)}{int(m.group(2)) + shift}"', text)


QUIRKS = {"attribute order": _shuffle_attributes, "namespace prefix": _prefix, "comments": _comments,
          "whitespace and line breaks": _whitespace, "cvParam order": _shuffle_cvparams,
          "offsets above 4 GB": _offsets_above_4gb,
          "no scan settings": lambda t: re.sub(r"<scanSettingsList.*?</scanSettingsList>", "", t, flags=re.S)}


@pytest.mark.parametrize("quirk", QUIRKS)
def test_writer_quirks_give_the_pyimzml_index(source, quirk, tmp_path):
    original = tmp_path / "original.imzML"
    shutil.copy(source, original)
    _rewrite(source, QUIRKS[quirk])
    stream, template = _both(source)
    # pyimzML itself fails on a file without scan settings (optional in the specification): compare with its
    # index of the file before the change there
    _assert_same_as_pyimzml(stream, original if quirk == "no scan settings" else source)
    if quirk == "no scan settings":
        assert stream.pixel_size is None
    if quirk == "offsets above 4 GB":
        assert stream.mz_offsets.min() > 2 ** 32


def test_signed_32_bit_offsets_are_unwrapped_as_pyimzml_does(tmp_path):
    path = _write_nanohet(tmp_path / "w.imzML", n=30)
    big = 2 ** 31 - 2000  # the offsets pass 2**31 after the first spectra: a signed 32-bit writer wraps them

    def wrap(m):
        value = int(m.group(2)) + big
        return f'{m.group(1)}{value - 2 ** 32 if value >= 2 ** 31 else value}"'

    _rewrite(path, lambda t: re.sub(r'(accession="IMS:1000102"[^>]*value=")(\d+)"', wrap, t))
    stream, _ = _both(path)
    _assert_same_as_pyimzml(stream, path)
    assert stream.int_offsets.max() > 2 ** 31
    np.testing.assert_array_equal(unwrap_offsets([5, -3, -2, 7, -1]), [5, 2 ** 32 - 3, 2 ** 32 - 2, 2 ** 32 + 7,
                                                                       2 ** 33 - 1])


def test_group_overrides_and_arrays_without_groups(tmp_path):
    """An array restating its group's encoding reads the same; an array that names its kind and encoding itself
    (no group) reads the same; an array overriding its group with another encoding is refused with its line."""
    path = _write_nanohet(tmp_path / "g.imzML")
    want = read_index_stream(path)
    restated = '<referenceableParamGroupRef ref="intensityArray"/>\n<cvParam cvRef="MS" accession="MS:1000521" ' \
               'name="32-bit float" value=""/>'
    _rewrite(path, lambda t: t.replace('<referenceableParamGroupRef ref="intensityArray"/>', restated))
    got, _ = _both(path)
    np.testing.assert_array_equal(got.int_offsets, want.int_offsets)
    inline = ('<cvParam cvRef="MS" accession="MS:1000515" name="intensity array" value=""/><cvParam cvRef="MS" '
              'accession="MS:1000521" name="32-bit float" value=""/><cvParam cvRef="MS" accession="MS:1000576" '
              'name="no compression" value=""/>')
    _rewrite(path, lambda t: t.replace(restated, inline))
    got, _ = _both(path)
    np.testing.assert_array_equal(got.int_offsets, want.int_offsets)
    assert got.int_precision == "f"
    lines = path.read_text(encoding="iso-8859-1").splitlines()
    third = [i for i, line in enumerate(lines) if "MS:1000515" in line][2] + 1  # the third spectrum's array
    _rewrite(path, lambda t: t.replace(inline, inline.replace("MS:1000521", "MS:1000523").replace("32-bit", "64-bit"),
                                       3).replace(inline.replace("MS:1000521", "MS:1000523").replace("32-bit",
                                                                                                     "64-bit"),
                                                  inline, 2))
    with pytest.raises(InputError, match=r"line \d+: spectrum 3 encodes its int array as 64-bit float"):
        read_index(path)
    assert third > 0


# ----------------------------------------------------------------------------- malformed files

def test_truncated_xml_is_refused_with_its_line(source):
    text = source.read_bytes()
    cut = text.index(b"<spectrum", len(text) // 2) + 40
    source.write_bytes(text[:cut])
    with pytest.raises(InputError, match=r"line \d+, column \d+: malformed XML") as err:
        read_index(source)
    assert str(source) in str(err.value)


def test_a_spectrum_without_its_offset_is_refused_with_its_line(source):
    text = source.read_text(encoding="iso-8859-1")
    tags = [m for m in re.finditer(r'<cvParam[^>]*accession="IMS:1000102"[^>]*/>', text)]
    victim = tags[len(tags) // 2 + 1]
    array_start = text.rfind("<binaryDataArray ", 0, victim.start())
    line = text.count("\n", 0, array_start) + 1  # the line of the array that lost its offset
    spectrum = text.count("<spectrum ", 0, victim.start())
    source.write_text(text[:victim.start()] + text[victim.end():], encoding="iso-8859-1")
    with pytest.raises(InputError, match=rf"line {line}: spectrum {spectrum} has no external offset "
                                         r"\(IMS:1000102\)") as err:
        read_index(source)
    assert str(source) in str(err.value)


def test_undefined_group_and_missing_position_are_refused(tmp_path):
    path = _write_nanohet(tmp_path / "u.imzML")
    _rewrite(path, lambda t: t.replace('ref="mzArray"/>', 'ref="mzArrai"/>', 2).replace('ref="mzArrai"/>',
                                                                                        'ref="mzArray"/>', 1))
    with pytest.raises(InputError, match=r"spectrum 2 refers to referenceableParamGroup 'mzArrai'"):
        read_index(path)
    path = _write_nanohet(tmp_path / "v.imzML")
    _rewrite(path, lambda t: re.sub(r'<cvParam[^>]*IMS:1000051[^>]*/>', "", t, count=1))
    with pytest.raises(InputError, match=r"spectrum 1 states no position y"):
        read_index(path)


def test_imzml_without_uuid_next_to_another_acquisitions_ibd_is_refused(tmp_path):
    """The reported case: no UUID in the imzML, the .ibd of another sample beside it. Refused by name; the same
    file with its own .ibd is read."""
    own = _write_nanohet(tmp_path / "own.imzML", n=40, seed=1)
    _rewrite(own, lambda t: re.sub(r'<cvParam[^>]*IMS:1000080[^>]*/>', "", t))
    assert read_imzml_index(own).n_spectra == 40  # its own .ibd: m/z arrays where it says
    other = _write_nanohet(tmp_path / "other.imzML", n=60, seed=9)
    shutil.copy(other.with_suffix(".ibd"), own.with_suffix(".ibd"))
    with pytest.raises(InputError, match="declares no UUID.*does not belong to this imzML"):
        read_imzml_index(own)
