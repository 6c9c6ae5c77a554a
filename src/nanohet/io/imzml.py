"""imzML + .ibd reading (validated, memory-mapped) and writing.

The XML is read once by :mod:`nanohet.io.imzml_index` (a streaming reader, no
element tree; pyimzML gives the same index and stays the tests' reference) into an
:class:`ImzMLIndex` (coordinates, offsets, lengths, encodings, pixel size, UUID);
spectra are then read from a memory-mapped .ibd by :mod:`nanohet.msi`, so no file
is ever loaded whole.

Format reference: imzML 1.1 specification (Schramm et al., J Proteomics
2012;75:5106-5110, doi:10.1016/j.jprot.2012.07.026), https://imzml.org.
"""

from __future__ import annotations

import json
import os
import re
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_paths
from ..errors import InputError
from .imzml_index import read_index

_DTYPES = {"f": np.float32, "d": np.float64, "i": np.int32, "l": np.int64}


@dataclass
class ImzMLIndex:
    """Everything needed to read spectra, taken from one parse of the XML.

    Attributes
    ----------
    imzml_path, ibd_path : Path
        The two files.
    coords : ndarray of int, shape (N, 2)
        1-based ``(x, y)`` pixel indices as written in the file.
    mz_offsets, mz_lengths, int_offsets, int_lengths : ndarray of int64, shape (N,)
        Byte offsets into the .ibd and element counts of each spectrum's arrays.
    mz_dtype, int_dtype : numpy dtype
        Encodings of the m/z and intensity arrays (little-endian).
    continuous : bool
        True when every spectrum shares one m/z array.
    pixel_size : tuple of float or None
        ``(x, y)`` pixel size in µm as declared in the file.
    uuid : str
        32 lower-case hex digits, as in the file and the .ibd header.
    stage_origin : tuple of float
        Physical ``(x, y)`` position (µm) of instrument pixel (1, 1) when the
        file declares one (M2aia's ``origin x/y`` or IMS ``absolute position
        offset x/y``), else ``(0, 0)``.
    """

    imzml_path: Path
    ibd_path: Path
    coords: np.ndarray
    mz_offsets: np.ndarray
    mz_lengths: np.ndarray
    int_offsets: np.ndarray
    int_lengths: np.ndarray
    mz_dtype: np.dtype
    int_dtype: np.dtype
    continuous: bool
    pixel_size: tuple[float, float] | None
    uuid: str
    stage_origin: tuple[float, float] = (0.0, 0.0)

    @property
    def n_spectra(self) -> int:
        return int(self.coords.shape[0])

    _ARRAYS = ("coords", "mz_offsets", "mz_lengths", "int_offsets", "int_lengths")

    def save(self, path: str | os.PathLike) -> None:
        """Cache the parsed index (``.npz``) so later steps need not parse the XML again."""
        from ..atomic import atomic_path

        meta = {"imzml_path": str(self.imzml_path), "ibd_path": str(self.ibd_path),
                "mz_dtype": self.mz_dtype.str, "int_dtype": self.int_dtype.str,
                "continuous": self.continuous, "pixel_size": self.pixel_size, "uuid": self.uuid,
                "stage_origin": list(self.stage_origin), "ibd_size": self.ibd_path.stat().st_size}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, meta=np.array(json.dumps(meta)), **{k: getattr(self, k) for k in self._ARRAYS})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ImzMLIndex":
        """Load a cached index; raises InputError if its .ibd changed since it was written."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in cls._ARRAYS}
        ibd = Path(meta["ibd_path"])
        if not ibd.is_file() or ibd.stat().st_size != meta["ibd_size"]:
            raise InputError(f"{path}: cached index no longer matches {ibd}; delete the cache to re-parse")
        return cls(imzml_path=Path(meta["imzml_path"]), ibd_path=ibd, mz_dtype=np.dtype(meta["mz_dtype"]),
                   int_dtype=np.dtype(meta["int_dtype"]), continuous=meta["continuous"],
                   pixel_size=tuple(meta["pixel_size"]) if meta["pixel_size"] else None, uuid=meta["uuid"],
                   stage_origin=tuple(meta["stage_origin"]), **arrays)


def _normalise_uuid(value: str) -> str:
    return re.sub(r"[^0-9a-f]", "", value.lower())


def find_ibd(imzml_path: str | os.PathLike) -> Path:
    """Return the .ibd beside ``imzml_path`` (extension matched in any case)."""
    imzml_path = Path(imzml_path)
    candidates = [
        p for p in imzml_path.parent.glob("*")
        if p.stem == imzml_path.stem and p.suffix.lower() == ".ibd"
    ]
    if not candidates:
        raise InputError(
            f"{imzml_path}: the binary file {imzml_path.stem}.ibd is missing "
            "(imzML data always come as an .imzML + .ibd pair)"
        )
    return candidates[0]


def _read_head(path: Path, size: int = 1 << 16) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def _reject_entities(path: Path, head: bytes) -> None:
    # Entity declarations enable entity-expansion attacks; imzML never needs them.
    if re.search(rb"<!DOCTYPE|<!ENTITY", head, re.IGNORECASE):
        raise InputError(f"{path}: the XML declares a DOCTYPE/ENTITY; refusing to expand entities")


_UM_PER_UNIT = {b"micrometer": 1.0, b"nanometer": 1e-3, b"millimeter": 1e3}


def _stage_origin(head: bytes) -> tuple[float, float]:
    """Physical position of pixel (1, 1) from the scan settings, if declared."""
    out = []
    for axis in (b"x", b"y"):
        m = re.search(rb'name="(?:origin|absolute position offset) ' + axis + rb'"\s+value="([-+0-9.eE]+)"'
                      rb'(?:[^>]*unitName="(\w+)")?', head)
        if m is None:
            return (0.0, 0.0)
        out.append(float(m.group(1)) * _UM_PER_UNIT.get(m.group(2) or b"micrometer", 1.0))
    return (out[0], out[1])


def read_imzml_index(path: str | os.PathLike) -> ImzMLIndex:
    """Parse and validate an imzML file without reading spectra.

    Parameters
    ----------
    path : path-like
        The ``.imzML`` file (extension in any case).

    Returns
    -------
    ImzMLIndex

    Raises
    ------
    InputError
        Missing files, malformed XML, entity declarations, compressed arrays,
        mismatched m/z and intensity lengths, a UUID that differs from the
        .ibd header, duplicate pixels, or offsets beyond the end of the .ibd
        (a truncated file). Every message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: imzML file not found")
    if path.suffix.lower() != ".imzml":
        raise InputError(f"{path}: expected an .imzML file")
    ibd = find_ibd(path)
    head = _read_head(path)
    _reject_entities(path, head)
    if re.search(rb"zlib compression|MS:1000574", head):
        raise InputError(f"{path}: compressed binary arrays are not supported; export uncompressed imzML")
    raw = read_index(path)
    coords, mz_len, int_len = raw.coords, raw.mz_lengths, raw.int_lengths
    _check_spectra(path, coords, mz_len, int_len)
    file_uuid = _normalise_uuid(raw.uuid)
    header = _check_uuid(path, ibd, file_uuid)
    mz_dtype = np.dtype(_DTYPES[raw.mz_precision]).newbyteorder("<")
    int_dtype = np.dtype(_DTYPES[raw.int_precision]).newbyteorder("<")
    mz_off, int_off = raw.mz_offsets, raw.int_offsets
    if min(mz_len.min(), int_len.min()) < 0:
        i = int(np.argmin(np.minimum(mz_len, int_len)))
        raise InputError(f"{path}: spectrum {i + 1} has a negative array length ({mz_len[i]}, {int_len[i]})")
    ends = np.maximum(mz_off + mz_len * mz_dtype.itemsize, int_off + int_len * int_dtype.itemsize)
    ibd_size = ibd.stat().st_size
    if ends.max() > ibd_size or min(mz_off.min(), int_off.min()) < 16:
        i = int(np.argmax(ends))
        raise InputError(
            f"{ibd}: spectrum {i + 1} ends at byte {int(ends[i])} but the file has {ibd_size} bytes "
            "(the .ibd is truncated or does not match the .imzML)"
        )
    continuous = bool(np.all(mz_off == mz_off[0]) and np.all(mz_len == mz_len[0]))
    if not file_uuid:
        _check_unlabelled_pairing(path, ibd, mz_off, mz_len, mz_dtype, continuous)
    pixel_size = raw.pixel_size
    return ImzMLIndex(
        imzml_path=path, ibd_path=ibd, coords=coords[:, :2], mz_offsets=mz_off, mz_lengths=mz_len,
        int_offsets=int_off, int_lengths=int_len, mz_dtype=mz_dtype, int_dtype=int_dtype,
        continuous=continuous, pixel_size=pixel_size, uuid=file_uuid or header.hex(),
        stage_origin=_stage_origin(head),
    )


def _check_unlabelled_pairing(path: Path, ibd: Path, mz_off, mz_len, mz_dtype, continuous: bool) -> None:
    """Without a UUID in the imzML (IMS:1000080, required by the specification) the .ibd cannot be matched by
    its header; check instead that the m/z arrays it holds at the declared offsets are m/z arrays (finite,
    positive, ascending) in a few spectra, so that another acquisition's .ibd is refused before it is read."""
    n = len(mz_off)
    picks = sorted({0, n // 2, n - 1}) if not continuous else [0]
    with open(ibd, "rb") as fh:
        for i in picks:
            if mz_len[i] == 0:
                continue
            fh.seek(int(mz_off[i]))
            mz = np.frombuffer(fh.read(int(mz_len[i]) * mz_dtype.itemsize), dtype=mz_dtype)
            if not (np.isfinite(mz).all() and (mz > 0).all() and (mz < 1e7).all() and (np.diff(mz) >= 0).all()):
                raise InputError(
                    f"{path}: declares no UUID (IMS:1000080), so its .ibd cannot be checked by UUID, and "
                    f"{ibd.name} holds no ascending m/z values where spectrum {i + 1}'s m/z array should be: "
                    "the .ibd does not belong to this imzML (or is corrupt)")


def _check_spectra(path: Path, coords: np.ndarray, mz_len: np.ndarray, int_len: np.ndarray) -> None:
    """At least one spectrum, one z, as many m/z values as intensities, one spectrum per pixel."""
    if coords.size == 0:
        raise InputError(f"{path}: the file contains no spectra")
    if len(np.unique(coords[:, 2])) > 1:
        raise InputError(f"{path}: 3-D imzML (several z positions) is not supported")
    bad = np.flatnonzero(mz_len != int_len)
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"{path}: spectrum {i + 1} at pixel {tuple(coords[i, :2])} has {mz_len[i]} m/z values "
            f"but {int_len[i]} intensities"
        )
    keys = coords[:, 1] * (coords[:, 0].max() + 1) + coords[:, 0]
    if np.unique(keys).size != keys.size:
        raise InputError(f"{path}: several spectra share one pixel position")


def _check_uuid(path: Path, ibd: Path, file_uuid: str) -> bytes:
    """The .ibd's 16-byte UUID header, which must equal the imzML's UUID when it declares one."""
    with open(ibd, "rb") as fh:
        header = fh.read(16)
    if len(header) < 16:
        raise InputError(f"{ibd}: shorter than the 16-byte UUID header (truncated or empty)")
    if file_uuid and header.hex() != file_uuid:
        raise InputError(
            f"{ibd}: UUID {header.hex()} in the .ibd header differs from {file_uuid} in {path.name}; "
            "the two files do not belong together"
        )
    return header


# ----------------------------------------------------------------------------- writing

_HEADER = """<?xml version="1.0" encoding="ISO-8859-1"?>
<mzML xmlns="http://psi.hupo.org/ms/mzml" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.1">
  <cvList count="3">
    <cv id="MS" fullName="Proteomics Standards Initiative Mass Spectrometry Ontology" version="4.1.0" URI="http://purl.obolibrary.org/obo/ms.obo"/>
    <cv id="UO" fullName="Unit Ontology" version="2020-03-10" URI="http://purl.obolibrary.org/obo/uo.obo"/>
    <cv id="IMS" fullName="Imaging MS Ontology" version="1.1.0" URI="https://raw.githubusercontent.com/imzML/imzML/master/imagingMS.obo"/>
  </cvList>
  <fileDescription>
    <fileContent>
      <cvParam cvRef="MS" accession="MS:1000579" name="MS1 spectrum" value=""/>
      <cvParam cvRef="MS" accession="MS:1000127" name="centroid spectrum" value=""/>
      <cvParam cvRef="IMS" accession="{mode_acc}" name="{mode}" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000080" name="universally unique identifier" value="{{{uuid}}}"/>
    </fileContent>
  </fileDescription>
  <referenceableParamGroupList count="3">
    <referenceableParamGroup id="mzArray">
      <cvParam cvRef="MS" accession="MS:1000514" name="m/z array" value="" unitCvRef="MS" unitAccession="MS:1000040" unitName="m/z"/>
      <cvParam cvRef="MS" accession="{mz_acc}" name="{mz_name}" value=""/>
      <cvParam cvRef="MS" accession="MS:1000576" name="no compression" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000101" name="external data" value="true"/>
    </referenceableParamGroup>
    <referenceableParamGroup id="intensityArray">
      <cvParam cvRef="MS" accession="MS:1000515" name="intensity array" value="" unitCvRef="MS" unitAccession="MS:1000131" unitName="number of detector counts"/>
      <cvParam cvRef="MS" accession="MS:1000521" name="32-bit float" value=""/>
      <cvParam cvRef="MS" accession="MS:1000576" name="no compression" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000101" name="external data" value="true"/>
    </referenceableParamGroup>
    <referenceableParamGroup id="spectrum1">
      <cvParam cvRef="MS" accession="MS:1000579" name="MS1 spectrum" value=""/>
      <cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="1"/>
      <cvParam cvRef="MS" accession="MS:1000127" name="centroid spectrum" value=""/>
      <cvParam cvRef="MS" accession="MS:1000130" name="positive scan" value=""/>
    </referenceableParamGroup>
  </referenceableParamGroupList>
  <softwareList count="1">
    <software id="nanohet" version="{version}">
      <cvParam cvRef="MS" accession="MS:1000799" name="custom unreleased software tool" value="nanohet"/>
    </software>
  </softwareList>
  <scanSettingsList count="1">
    <scanSettings id="scanSettings1">
      <cvParam cvRef="IMS" accession="IMS:1000042" name="max count of pixels x" value="{nx}"/>
      <cvParam cvRef="IMS" accession="IMS:1000043" name="max count of pixels y" value="{ny}"/>
      <cvParam cvRef="IMS" accession="IMS:1000044" name="max dimension x" value="{dimx:g}" unitCvRef="UO" unitAccession="UO:0000017" unitName="micrometer"/>
      <cvParam cvRef="IMS" accession="IMS:1000045" name="max dimension y" value="{dimy:g}" unitCvRef="UO" unitAccession="UO:0000017" unitName="micrometer"/>
      <cvParam cvRef="IMS" accession="IMS:1000046" name="pixel size x" value="{px:g}" unitCvRef="UO" unitAccession="UO:0000017" unitName="micrometer"/>
      <cvParam cvRef="IMS" accession="IMS:1000047" name="pixel size y" value="{py:g}" unitCvRef="UO" unitAccession="UO:0000017" unitName="micrometer"/>
    </scanSettings>
  </scanSettingsList>
  <instrumentConfigurationList count="1">
    <instrumentConfiguration id="IC1"/>
  </instrumentConfigurationList>
  <dataProcessingList count="1">
    <dataProcessing id="nanohet_export">
      <processingMethod order="1" softwareRef="nanohet">
        <cvParam cvRef="MS" accession="MS:1000544" name="Conversion to mzML" value=""/>
      </processingMethod>
    </dataProcessing>
  </dataProcessingList>
  <run defaultInstrumentConfigurationRef="IC1" id="run1">
    <spectrumList count="{n}" defaultDataProcessingRef="nanohet_export">
"""

_SPECTRUM = """      <spectrum id="Scan={i}" defaultArrayLength="0" index="{i0}">
        <referenceableParamGroupRef ref="spectrum1"/>
        <scanList count="1">
          <cvParam cvRef="MS" accession="MS:1000795" name="no combination" value=""/>
          <scan instrumentConfigurationRef="IC1">
            <cvParam cvRef="IMS" accession="IMS:1000050" name="position x" value="{x}"/>
            <cvParam cvRef="IMS" accession="IMS:1000051" name="position y" value="{y}"/>
          </scan>
        </scanList>
        <binaryDataArrayList count="2">
          <binaryDataArray encodedLength="0">
            <referenceableParamGroupRef ref="mzArray"/>
            <cvParam cvRef="IMS" accession="IMS:1000102" name="external offset" value="{mo}"/>
            <cvParam cvRef="IMS" accession="IMS:1000103" name="external array length" value="{n}"/>
            <cvParam cvRef="IMS" accession="IMS:1000104" name="external encoded length" value="{mb}"/>
            <binary/>
          </binaryDataArray>
          <binaryDataArray encodedLength="0">
            <referenceableParamGroupRef ref="intensityArray"/>
            <cvParam cvRef="IMS" accession="IMS:1000102" name="external offset" value="{io}"/>
            <cvParam cvRef="IMS" accession="IMS:1000103" name="external array length" value="{n}"/>
            <cvParam cvRef="IMS" accession="IMS:1000104" name="external encoded length" value="{ib}"/>
            <binary/>
          </binaryDataArray>
        </binaryDataArrayList>
      </spectrum>
"""

_FOOTER = """    </spectrumList>
  </run>
</mzML>
"""


def deterministic_uuid(*parts) -> str:
    """A version-4-formatted UUID derived from ``parts`` (reproducible files)."""
    import hashlib

    digest = hashlib.sha256(repr(parts).encode()).digest()[:16]
    return str(uuidlib.UUID(bytes=digest, version=4))


class ImzMLWriter:
    """Write an imzML + .ibd pair chunk by chunk, atomically.

    Spectra are appended in chunks of flat arrays (no Python loop per
    spectrum for the binary data). Both files appear under their final names
    only when the context exits without error.

    Parameters
    ----------
    imzml_path : path-like
        Output ``.imzML``; the ``.ibd`` is written beside it.
    pixel_size_um : float
        Square pixel size in µm, written as IMS pixel size x/y.
    mode : {"processed", "continuous"}
        Processed: one m/z array per spectrum. Continuous: one shared m/z
        array (give it as ``mz_axis``).
    uuid : str
        File UUID (see :func:`deterministic_uuid`).
    mz_dtype : numpy dtype
        float32 or float64 m/z encoding.
    mz_axis : ndarray, optional
        The shared m/z array, required for continuous mode.
    """

    def __init__(self, imzml_path, pixel_size_um: float, mode: str = "processed", *, uuid: str,
                 mz_dtype=np.float64, mz_axis: np.ndarray | None = None):
        if mode not in ("processed", "continuous"):
            raise ValueError(f"mode must be 'processed' or 'continuous', got {mode!r}")
        if mode == "continuous" and mz_axis is None:
            raise ValueError("continuous mode needs the shared mz_axis")
        self.imzml_path = Path(imzml_path)
        self.ibd_path = self.imzml_path.with_suffix(".ibd")
        self.pixel_size = float(pixel_size_um)
        self.mode = mode
        self.uuid = str(uuidlib.UUID(uuid))
        self.mz_dtype = np.dtype(mz_dtype).newbyteorder("<")
        self.mz_axis = None if mz_axis is None else np.asarray(mz_axis, dtype=self.mz_dtype)
        self._rows: list[str] = []
        self._coords: list[np.ndarray] = []

    def __enter__(self):
        self._ctx = atomic_paths(self.imzml_path, self.ibd_path)
        self._xml_tmp, self._ibd_tmp = self._ctx.__enter__()
        self._ibd = open(self._ibd_tmp, "wb")
        self._ibd.write(uuidlib.UUID(self.uuid).bytes)
        self._pos = 16
        self._index = 0
        if self.mode == "continuous":
            self._axis_offset = self._pos
            self._ibd.write(self.mz_axis.tobytes())
            self._pos += self.mz_axis.nbytes
        return self

    def add_spectra(self, coords, intensities, mzs=None, lengths=None) -> None:
        """Append a chunk of spectra.

        Parameters
        ----------
        coords : ndarray of int, shape (n, 2)
            1-based ``(x, y)`` pixel positions.
        intensities : ndarray
            Processed mode: flat float32 array of all peaks of the chunk.
            Continuous mode: array of shape ``(n, len(mz_axis))``.
        mzs : ndarray, optional
            Processed mode: flat m/z array aligned with ``intensities``.
        lengths : ndarray of int, optional
            Processed mode: number of peaks of each spectrum.
        """
        coords = np.asarray(coords, dtype=np.int64)
        n = coords.shape[0]
        ints = np.asarray(intensities, dtype="<f4")
        if self.mode == "continuous":
            m = self.mz_axis.size
            if ints.shape != (n, m):
                raise ValueError(f"continuous chunk must have shape {(n, m)}, got {ints.shape}")
            lengths = np.full(n, m, dtype=np.int64)
            int_off = self._pos + np.arange(n, dtype=np.int64) * m * 4
            mz_off = np.full(n, self._axis_offset, dtype=np.int64)
            self._ibd.write(ints.tobytes())
            self._pos += ints.nbytes
        else:
            lengths = np.asarray(lengths, dtype=np.int64)
            mz = np.asarray(mzs, dtype=self.mz_dtype)
            if lengths.sum() != mz.size or mz.size != ints.size:
                raise ValueError("lengths, mzs and intensities do not agree")
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            # Block layout per chunk: all m/z arrays, then all intensity arrays.
            mz_off = self._pos + starts * self.mz_dtype.itemsize
            self._ibd.write(mz.tobytes())
            self._pos += mz.nbytes
            int_off = self._pos + starts * 4
            self._ibd.write(ints.tobytes())
            self._pos += ints.nbytes
        mb = lengths * self.mz_dtype.itemsize
        ib = lengths * 4
        for k in range(n):
            self._index += 1
            self._rows.append(_SPECTRUM.format(
                i=self._index, i0=self._index - 1, x=coords[k, 0], y=coords[k, 1],
                mo=mz_off[k], n=lengths[k], mb=mb[k], io=int_off[k], ib=ib[k]))
        self._coords.append(coords)

    def __exit__(self, exc_type, exc, tb):
        from .. import __version__

        self._ibd.close()
        if exc_type is None:
            coords = np.concatenate(self._coords) if self._coords else np.zeros((0, 2), int)
            nx, ny = (int(coords[:, 0].max()), int(coords[:, 1].max())) if len(coords) else (0, 0)
            header = _HEADER.format(
                mode=self.mode, mode_acc="IMS:1000031" if self.mode == "processed" else "IMS:1000030",
                uuid=self.uuid.upper(), version=__version__,
                mz_acc="MS:1000523" if self.mz_dtype.itemsize == 8 else "MS:1000521",
                mz_name="64-bit float" if self.mz_dtype.itemsize == 8 else "32-bit float",
                nx=nx, ny=ny, dimx=nx * self.pixel_size, dimy=ny * self.pixel_size,
                px=self.pixel_size, py=self.pixel_size, n=len(self._rows))
            with open(self._xml_tmp, "w", encoding="ISO-8859-1", newline="\n") as fh:
                fh.write(header)
                fh.writelines(self._rows)
                fh.write(_FOOTER)
        return self._ctx.__exit__(exc_type, exc, tb)


def acquired_mz_range(index: ImzMLIndex) -> tuple[float, float]:
    """The smallest and largest m/z of a few spectra (first, middle and last; the shared axis of a continuous
    file), read at the index's offsets: the acquired mass range, without reading the file."""
    picks = [0] if index.continuous else sorted({0, index.n_spectra // 2, index.n_spectra - 1})
    lo, hi = np.inf, -np.inf
    size = index.mz_dtype.itemsize
    with open(index.ibd_path, "rb") as fh:
        for i in picks:
            n = int(index.mz_lengths[i])
            if n == 0:
                continue
            fh.seek(int(index.mz_offsets[i]))
            first = float(np.frombuffer(fh.read(size), dtype=index.mz_dtype)[0])
            fh.seek(int(index.mz_offsets[i]) + (n - 1) * size)
            last = float(np.frombuffer(fh.read(size), dtype=index.mz_dtype)[0])
            lo, hi = min(lo, first), max(hi, last)
    return lo, hi


def is_profile(index: ImzMLIndex) -> bool:
    """Whether the file declares profile spectra (MS:1000128) rather than centroids (MS:1000127)."""
    head = _read_head(index.imzml_path)
    return b"MS:1000128" in head and b"MS:1000127" not in head


def mz_sampling_step(index: ImzMLIndex, mz: float) -> float:
    """The m/z spacing of the samples around ``mz`` in a profile spectrum (the shared axis of a continuous file,
    else the middle spectrum), or NaN when no spectrum spans it."""
    order = [0] if index.continuous else [index.n_spectra // 2] + list(range(0, index.n_spectra,
                                                                               max(index.n_spectra // 20, 1)))
    with open(index.ibd_path, "rb") as fh:
        for i in order:
            n = int(index.mz_lengths[i])
            if n < 2:
                continue
            fh.seek(int(index.mz_offsets[i]))
            axis = np.frombuffer(fh.read(n * index.mz_dtype.itemsize), dtype=index.mz_dtype).astype(np.float64)
            k = int(np.searchsorted(axis, mz))
            if 0 < k < n:
                return float(axis[k] - axis[k - 1])
    return float("nan")
