"""The index of an imzML file (coordinates, offsets, lengths, encodings), read in one streaming pass.

An imzML file is mzML: a header (``referenceableParamGroupList``, ``fileDescription``, ``scanSettingsList``, ...)
and a ``spectrumList`` whose every ``spectrum`` names its pixel (``IMS:1000050/51/52``, position x/y/z, in its
``scan``) and, per ``binaryDataArray``, where its array lies in the .ibd (``IMS:1000102`` external offset,
``IMS:1000103`` external array length). Whether an array holds m/z (``MS:1000514``) or intensities
(``MS:1000515``), and its encoding (32/64-bit float or integer) and compression, are cvParams of the array
itself or of the ``referenceableParamGroup`` it refers to; the array's own cvParams override the group's.
Specification: imzML 1.1 (Schramm et al., J Proteomics 2012;75:5106) and mzML 1.1 (Martens et al., Mol Cell
Proteomics 2011;10:R110.000133).

Two readers give the same index:

* :func:`read_index_stream`, the reference: the XML through expat (no element tree), fed in 1 MB pieces, every
  cvParam resolved as above, whatever the prefixes, attribute order, comments, whitespace or cvParam order.
  Anything it does not understand is an :class:`~nanohet.errors.InputError` naming the file and the line.
* The template reader (tried first by :func:`read_index`): writers repeat one spectrum layout with different
  numbers. It reads the header and the first spectrum with the reference reader, turns the first spectrum's
  text into a pattern in which every attribute value except the ones that carry meaning (accession, name, ref,
  cvRef, units) is free, learns which free value is x, y, offset or length by reading a copy of that spectrum
  whose values are replaced by markers, and then matches the pattern over the rest of the spectrum list in
  64 MB pieces with the regular-expression engine (about 20 times faster than an element tree). It accepts
  the file only if every spectrum start tag in the list is one match and the file ends with its root's end
  tag; otherwise (a spectrum laid out differently, a comment, a truncated file) the reference reader reads the
  file and reports what is wrong.

Offsets written as negative 32-bit numbers by some writers are unwrapped as pyimzML does, so both give the
same index (``tests/test_imzml_index.py`` checks every test file and each writer quirk against pyimzML).
"""

from __future__ import annotations

import re
import warnings
from array import array
from dataclasses import dataclass
from pathlib import Path
from xml.parsers import expat

import numpy as np

from ..errors import InputError

POSITION = {"IMS:1000050": 0, "IMS:1000051": 1, "IMS:1000052": 2}
EXTERNAL_OFFSET, ARRAY_LENGTH = "IMS:1000102", "IMS:1000103"
MZ_ARRAY, INTENSITY_ARRAY = "MS:1000514", "MS:1000515"
UUID = "IMS:1000080"
PIXEL_SIZE = {"IMS:1000046": 0, "IMS:1000047": 1}
# array encodings (numpy kind letters, as pyimzML); the integer ones under both their MS and IMS accessions
ENCODINGS = {"MS:1000521": "f", "MS:1000523": "d", "MS:1000519": "i", "IMS:1000141": "i", "MS:1000522": "l",
             "IMS:1000142": "l"}
ENCODING_NAMES = {"f": "32-bit float", "d": "64-bit float", "i": "32-bit integer", "l": "64-bit integer"}
NO_COMPRESSION = "MS:1000576"
# attributes whose values carry meaning: fixed in the template; every other attribute value may vary
MEANINGFUL_ATTRIBUTES = {b"accession", b"cvRef", b"name", b"ref", b"unitAccession", b"unitCvRef", b"unitName"}
FEED_BYTES = 1 << 20
TEMPLATE_CHUNK_BYTES = 64 << 20
_MARKER = 7_000_000_000_000  # marker values of the template's free attributes: integers no file holds


@dataclass
class RawIndex:
    """The index as the file states it.

    Attributes
    ----------
    coords : ndarray of int64, (N, 3)
        1-based pixel ``(x, y, z)``; z is 1 when not stated.
    mz_offsets, mz_lengths, int_offsets, int_lengths : ndarray of int64, (N,)
        Byte offsets into the .ibd and element counts of each spectrum's arrays.
    mz_precision, int_precision : str
        Encodings as numpy kind letters: ``f``, ``d`` (32/64-bit float), ``i``, ``l`` (32/64-bit integer).
    uuid : str
        The file's UUID as written (``IMS:1000080``), or ``""``.
    pixel_size : tuple of float or None
        ``(x, y)`` pixel size as written (µm), when the scan settings state it.
    reader : str
        ``"template"`` or ``"stream"``: which reader produced it.
    """

    coords: np.ndarray
    mz_offsets: np.ndarray
    mz_lengths: np.ndarray
    int_offsets: np.ndarray
    int_lengths: np.ndarray
    mz_precision: str
    int_precision: str
    uuid: str
    pixel_size: tuple | None
    reader: str


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def unwrap_offsets(values: np.ndarray) -> np.ndarray:
    """Offsets a writer stored as signed 32-bit numbers, unwrapped the way pyimzML does: each step from a
    non-negative value to a negative one adds 2**32 to it and to every later value."""
    values = np.asarray(values, dtype=np.int64)
    wraps = np.zeros(values.shape, dtype=np.int64)
    if values.size > 1:
        wraps[1:] = (values[1:] < 0) & (values[:-1] >= 0)
    return values + np.cumsum(wraps) * (1 << 32)


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        number = float(text)  # "12.0" from some writers; anything else raises
        if not number.is_integer():
            raise
        return int(number)


class _Handler:
    """expat callbacks that fill the index arrays as the document streams past."""

    def __init__(self, path: Path, groups: dict | None = None):
        self.path = path
        self.parser = expat.ParserCreate()
        self.parser.buffer_text = True
        self.parser.StartElementHandler = self.start
        self.parser.EndElementHandler = self.end
        self.stack: list[str] = []
        self.groups: dict[str, dict] = dict(groups or {})
        self.group: dict | None = None
        self.root_name = ""
        self.uuid = ""
        self.pixel = [None, None]
        self.precision = {"mz": None, "int": None}
        self.columns = {k: array("q") for k in ("x", "y", "z", "mo", "ml", "io", "il")}
        self.spectrum = None  # the open spectrum's fields
        self.array = None  # the open binaryDataArray's refs and cvParams
        self.scan_depth = 0
        self.first_span: tuple[int, int] | None = None
        self.spectrum_qname = ""
        self.list_qname = ""
        self.list_count = ""

    # -- callbacks
    def start(self, qname: str, attrs: dict) -> None:
        name = _local(qname)
        if not self.root_name:
            self.root_name = qname
        if name == "cvParam":
            self.cv_param(attrs.get("accession", ""), attrs.get("value", ""), attrs.get("name", ""))
        elif name == "referenceableParamGroupRef":
            self.group_ref(attrs.get("ref", ""))
        elif name == "referenceableParamGroup":
            self.group = self.groups.setdefault(attrs.get("id", ""), {})
        elif name == "spectrum" and self.list_qname:
            self.spectrum = {"line": self.parser.CurrentLineNumber, "start": self.parser.CurrentByteIndex,
                             "position": {}, "arrays": [], "index": len(self.columns["x"]) + 1,
                             "index_attribute": attrs.get("index", "")}
            self.spectrum_qname = qname
        elif name == "spectrumList":
            self.list_qname = qname
            self.list_count = attrs.get("count", "")
        elif name == "binaryDataArray" and self.spectrum is not None:
            self.array = {"refs": [], "params": {}, "line": self.parser.CurrentLineNumber}
        elif name == "scan" and self.spectrum is not None:
            self.scan_depth += 1
        self.stack.append(name)

    def end(self, qname: str) -> None:
        name = self.stack.pop()
        if name == "referenceableParamGroup":
            self.group = None
        elif name == "binaryDataArray" and self.array is not None:
            self.spectrum["arrays"].append(self.array)
            self.array = None
        elif name == "scan" and self.spectrum is not None:
            self.scan_depth -= 1
        elif name == "spectrum" and self.spectrum is not None:
            self.finish_spectrum()
            if self.first_span is None:
                self.first_span = (self.spectrum_start, self.parser.CurrentByteIndex)
                self.first_index_attribute = self.spectrum["index_attribute"]
            self.spectrum = None

    def cv_param(self, accession: str, value: str, label: str) -> None:
        if self.group is not None:
            self.group[accession] = (value, label)
        elif self.array is not None:
            self.array["params"][accession] = (value, label)
        elif self.spectrum is not None:
            if self.scan_depth and accession in POSITION:
                self.spectrum["position"][accession] = value
        elif accession == UUID:
            self.uuid = value
        elif accession in PIXEL_SIZE and "scanSettings" in self.stack:
            self.pixel[PIXEL_SIZE[accession]] = value

    def group_ref(self, ref: str) -> None:
        if self.array is not None:
            self.array["refs"].append(ref)
        elif self.spectrum is not None and self.scan_depth:
            for accession, (value, _) in self._group(ref, self.spectrum["line"]).items():
                if accession in POSITION:
                    self.spectrum["position"].setdefault(accession, value)

    # -- a finished spectrum
    def _group(self, ref: str, line: int) -> dict:
        if ref not in self.groups:
            raise self.error(line, f"refers to referenceableParamGroup {ref!r}, which the file does not define")
        return self.groups[ref]

    def error(self, line: int, what: str) -> InputError:
        where = f"spectrum {self.spectrum['index']}" if self.spectrum else "the file"
        return InputError(f"{self.path}, line {line}: {where} {what}")

    def resolve(self, arr: dict) -> tuple[str | None, str, int, int]:
        """An array's kind (``mz``, ``int`` or None for other arrays), encoding, offset and length."""
        params = {}
        for ref in arr["refs"]:
            params.update(self._group(ref, arr["line"]))
        params.update(arr["params"])  # the array's own cvParams override its groups'
        kinds = [k for k, acc in (("mz", MZ_ARRAY), ("int", INTENSITY_ARRAY)) if acc in params]
        if len(kinds) > 1:
            raise self.error(arr["line"], "has a binaryDataArray that is both an m/z and an intensity array")
        if not kinds:
            return None, "", 0, 0
        for accession, (_, label) in params.items():
            if accession != NO_COMPRESSION and ("compression" in label.lower() or "numpress" in label.lower()):
                raise self.error(arr["line"], f"has a compressed {kinds[0]} array ({label}); export uncompressed "
                                              "imzML")
        encodings = {ENCODINGS[a] for a in params if a in ENCODINGS}
        if len(encodings) != 1:
            raise self.error(arr["line"], f"states {len(encodings)} encodings for its {kinds[0]} array "
                                          "(one of 32/64-bit float or integer is needed)")
        values = {}
        for accession, label in ((EXTERNAL_OFFSET, "external offset"), (ARRAY_LENGTH, "external array length")):
            if accession not in params:
                raise self.error(arr["line"], f"has no {label} ({accession}) for its {kinds[0]} array")
            try:
                values[accession] = _integer(params[accession][0])
            except ValueError:
                raise self.error(arr["line"], f"has {label} {params[accession][0]!r}, not an integer") from None
        return kinds[0], encodings.pop(), values[EXTERNAL_OFFSET], values[ARRAY_LENGTH]

    def finish_spectrum(self) -> None:
        sp = self.spectrum
        found = {}
        for arr in sp["arrays"]:
            kind, encoding, offset, length = self.resolve(arr)
            if kind is None:
                continue
            if kind in found:
                raise self.error(sp["line"], f"has two {kind} arrays")
            if self.precision[kind] is None:
                self.precision[kind] = encoding
            elif self.precision[kind] != encoding:
                raise self.error(arr["line"], f"encodes its {kind} array as {ENCODING_NAMES[encoding]}, the "
                                              f"spectra before it as {ENCODING_NAMES[self.precision[kind]]}; "
                                              "one encoding per array kind is supported")
            found[kind] = (offset, length)
        for kind, label in (("mz", "m/z"), ("int", "intensity")):
            if kind not in found:
                raise self.error(sp["line"], f"has no {label} array")
        position = sp["position"]
        for accession, label in (("IMS:1000050", "position x"), ("IMS:1000051", "position y")):
            if accession not in position:
                raise self.error(sp["line"], f"states no {label} ({accession}) in its scan")
        try:
            xyz = [_integer(position[a]) for a in ("IMS:1000050", "IMS:1000051")]
            xyz.append(_integer(position["IMS:1000052"]) if "IMS:1000052" in position else 1)
        except ValueError:
            raise self.error(sp["line"], f"has a position that is not an integer pixel index: {position}") from None
        c = self.columns
        for key, value in zip(("x", "y", "z", "mo", "ml", "io", "il"), (*xyz, *found["mz"], *found["int"])):
            c[key].append(value)

    @property
    def spectrum_start(self) -> int:
        return self.spectrum["start"]

    def feed(self, data: bytes, final: bool = False) -> None:
        try:
            self.parser.Parse(data, final)
        except expat.ExpatError as exc:
            raise InputError(f"{self.path}, line {exc.lineno}, column {exc.offset}: malformed XML "
                             f"({expat.ErrorString(exc.code)})") from None

    def result(self, reader: str) -> RawIndex:
        c = self.columns
        if not self.list_qname:
            raise InputError(f"{self.path}: no spectrumList (not an imzML file)")
        if len(c["x"]) == 0:
            raise InputError(f"{self.path}: the file contains no spectra")
        pixel = None
        if self.pixel[0] is not None:
            try:
                pixel = (float(self.pixel[0]), float(self.pixel[1] if self.pixel[1] is not None else self.pixel[0]))
            except ValueError:
                raise InputError(f"{self.path}: pixel size {self.pixel} is not a number") from None
        for kind in ("mz", "int"):
            if self.precision[kind] is None:
                raise InputError(f"{self.path}: the {kind} array encoding is not declared")
        return RawIndex(
            coords=np.column_stack([np.frombuffer(c[k], dtype=np.int64) for k in ("x", "y", "z")]),
            mz_offsets=unwrap_offsets(np.frombuffer(c["mo"], dtype=np.int64)),
            mz_lengths=np.frombuffer(c["ml"], dtype=np.int64).copy(),
            int_offsets=unwrap_offsets(np.frombuffer(c["io"], dtype=np.int64)),
            int_lengths=np.frombuffer(c["il"], dtype=np.int64).copy(),
            mz_precision=self.precision["mz"], int_precision=self.precision["int"], uuid=self.uuid,
            pixel_size=pixel, reader=reader)


def read_index_stream(path: str | Path) -> RawIndex:
    """The reference reader: the whole file through expat, in :data:`FEED_BYTES` pieces."""
    path = Path(path)
    handler = _Handler(path)
    with open(path, "rb") as fh:
        while chunk := fh.read(FEED_BYTES):
            handler.feed(chunk)
    handler.feed(b"", final=True)
    return handler.result("stream")


# ----------------------------------------------------------------------------- the template reader

_ATTRIBUTE = re.compile(rb'(\s)([\w.:-]+)(\s*=\s*)"([^"]*)"')


def _template(path: Path, handler: _Handler, text: bytes):
    """The pattern of the first spectrum's text, and which of its groups hold the spectrum's ``index`` attribute
    and x, y, z, the arrays' offsets and lengths (None for z when not stated); None when a field does not come
    from a free value of the spectrum's own text."""
    if b"'" in text or b"<!" in text or b"<?" in text:
        return None
    pieces, marked, position, k, index_slot = [], [], 0, 0, None
    first_tag_end = text.find(b">")
    for m in _ATTRIBUTE.finditer(text):
        marked.append(text[position:m.start(4)])
        pieces.append(re.escape(text[position:m.start(4)]))
        if m.group(2) in MEANINGFUL_ATTRIBUTES:
            marked.append(m.group(4))
            pieces.append(re.escape(m.group(4)))
        else:
            if m.group(2) == b"index" and m.start() < first_tag_end:
                index_slot = k
            marked.append(str(_MARKER + k).encode())
            pieces.append(None)  # a free value
            k += 1
        position = m.end(4)
    marked.append(text[position:])
    pieces.append(re.escape(text[position:]))
    if index_slot is None:
        return None  # without the spectrum's index the matches cannot be checked for gaps
    # read the marked copy with the reference reader: the markers it reports say which value is which field
    probe = _Handler(path, handler.groups)
    probe.list_qname = handler.list_qname
    probe.feed(b"<probe>" + b"".join(marked) + b"</probe>", final=True)
    if len(probe.columns["x"]) != 1 or probe.precision != handler.precision:
        return None
    slots = {"index": index_slot}
    for key in FIELDS:
        value = probe.columns[key][0]
        if _MARKER <= value < _MARKER + k:
            slots[key] = value - _MARKER
        elif key == "z" and value == 1 and b"IMS:1000052" not in text:
            slots[key] = None  # not stated: 1
        else:
            return None
    wanted = sorted(i for i in slots.values() if i is not None)
    free = iter(range(k))
    pattern = b"".join(p if p is not None else (rb'([^"]*)' if next(free) in wanted else rb'[^"]*')
                       for p in pieces)
    return re.compile(pattern), {key: wanted.index(i) if i is not None else None for key, i in slots.items()}


FIELDS = ("x", "y", "z", "mo", "ml", "io", "il")


def _read_template(path: Path) -> RawIndex | None:
    """The template reader; None when the file is not one repeated spectrum layout (then use the stream)."""
    import mmap

    handler = _Handler(path)
    with open(path, "rb") as fh:
        while handler.first_span is None:
            chunk = fh.read(1 << 16)
            if not chunk:
                return None
            handler.feed(chunk)
        size = fh.seek(0, 2)
        if size == 0:
            return None
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            found = _match_spectra(handler, mm, size)
    if found is None:
        return None
    values, slots = found
    n = values.shape[0] + 1
    try:
        count, first_index = int(handler.list_count), int(handler.first_index_attribute)
    except ValueError:
        return None
    # every spectrum matched: the list holds n spectra and their indices follow the first one's without a gap
    # (0-based as mzML says, or 1-based as some writers number them)
    if count != n or not np.array_equal(values[:, slots["index"]], first_index + np.arange(1, n)):
        return None
    first = handler.columns
    cols = {}
    for key in FIELDS:
        slot = slots[key]
        cols[key] = np.ones(n, dtype=np.int64) if slot is None else np.concatenate([[first[key][0]], values[:, slot]])
    pixel = None
    if handler.pixel[0] is not None:
        try:
            pixel = (float(handler.pixel[0]), float(handler.pixel[1] if handler.pixel[1] is not None
                                                    else handler.pixel[0]))
        except ValueError:
            return None
    return RawIndex(coords=np.column_stack([cols["x"], cols["y"], cols["z"]]),
                    mz_offsets=unwrap_offsets(cols["mo"]), mz_lengths=cols["ml"],
                    int_offsets=unwrap_offsets(cols["io"]), int_lengths=cols["il"],
                    mz_precision=handler.precision["mz"], int_precision=handler.precision["int"],
                    uuid=handler.uuid, pixel_size=pixel, reader="template")


def _match_spectra(handler: _Handler, mm, size: int):
    """Match the first spectrum's pattern over the rest of the spectrum list (memory-mapped, in
    :data:`TEMPLATE_CHUNK_BYTES` windows). Returns the matched values (one row per spectrum after the first)
    and the column of each field, or None."""
    start, end_tag = handler.first_span
    end = mm.find(b">", end_tag) + 1
    if end <= 0:
        return None
    made = _template(handler.path, handler, mm[start:end])
    if made is None:
        return None
    pattern, slots = made
    list_end = re.compile(b"</" + re.escape(handler.list_qname.encode()) + rb"\s*>")
    close_tag = b"</" + handler.spectrum_qname.encode()
    root_end = re.compile(b"</" + re.escape(handler.root_name.encode()) + rb"\s*>\s*$")
    if not root_end.search(mm[max(size - 4096, 0):]):
        return None  # the file does not end with its root element: truncated
    parts, position = [], end
    while True:
        window_end = min(position + TEMPLATE_CHUNK_BYTES, size)
        closing = list_end.search(mm, position, window_end)
        if closing is not None:
            stop = closing.start()
        elif window_end == size:
            return None  # no end of the spectrum list
        else:
            cut = mm.rfind(close_tag, position, window_end)
            if cut < 0:
                return None  # a spectrum larger than a window: not a layout the template reader takes
            stop = mm.find(b">", cut) + 1
        matches = pattern.findall(mm, position, stop)
        if matches:
            parts.append(b" ".join(b" ".join(m) for m in matches))
        position = stop
        if closing is not None:
            break
    text = b" ".join(parts)
    if not text:
        return np.zeros((0, len(set(v for v in slots.values() if v is not None))), np.int64), slots
    width = max(v for v in slots.values() if v is not None) + 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # text that does not parse to its end is an error, not a short array
            numbers = np.fromstring(text, dtype=np.int64, sep=" ")  # ints only; else the stream reader says
    except (ValueError, DeprecationWarning):
        return None
    if numbers.size % width:
        return None
    return numbers.reshape(-1, width), slots


def read_layout(path: str | Path, max_head_bytes: int = 8 << 20) -> dict | None:
    """From the head of the file only (up to the end of its first spectrum): the array encodings (numpy kind
    letters), the first spectrum's number of peaks, the number of spectra the list declares and the mode the
    file content declares (``continuous``: IMS:1000030, else processed). For planning ahead (e.g. compiling a
    kernel while the index is read); None when the head does not tell, never an error (the index reader reports
    what is wrong)."""
    handler = _Handler(Path(path))
    head = []
    try:
        with open(path, "rb") as fh:
            while handler.first_span is None:
                chunk = fh.read(1 << 16)
                if not chunk or sum(map(len, head)) > max_head_bytes:
                    return None
                head.append(chunk)
                handler.feed(chunk)
        count = int(handler.list_count)
    except (InputError, OSError, ValueError):
        return None
    if None in handler.precision.values():
        return None
    return {"mz_precision": handler.precision["mz"], "int_precision": handler.precision["int"],
            "first_peaks": int(handler.columns["il"][0]), "count": count,
            "continuous": b"IMS:1000030" in b"".join(head)}


def read_index(path: str | Path) -> RawIndex:
    """The index of an imzML file: the template reader where the file repeats one spectrum layout, else the
    reference stream reader (which reports anything malformed with its line)."""
    path = Path(path)
    return _read_template(path) or read_index_stream(path)
