"""A check of every input before the analysis runs: metadata only (no pixels), every problem at once.

Run by ``nanohet check`` and by the workflow when it builds its job graph (so ``snakemake -n`` already
refuses a study it cannot analyse). For each sample-sheet row it checks, without reading pixels:

* the file exists (an imzML's .ibd too);
* sections: a pixel size from the file (OME, vendor metadata) or the sheet; the channels the config's
  ``microscopy.channels`` roles name are in the fluorescence file;
* MSI: the index parses (UUID, offsets), a pixel size, and every analyte's m/z window lies inside the acquired
  m/z range (read from a few spectra's first and last m/z);
* volumes: the header reads, the mask (or RT structure set) exists and lies on the volume's grid.

Duplicate rows and the sheet's own rules are checked when it is loaded (:mod:`nanohet.io.samplesheet`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..settings import Config


@dataclass
class Problem:
    sample: str
    modality: str
    path: str
    what: str

    def line(self) -> str:
        return f"{self.sample or '-'} {self.modality}: {self.path}: {self.what}"


def _optional(value):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) or value == "" else value


def _check_section(row: dict, config: Config) -> list[str]:
    from .ometiff import section_metadata

    out = []
    names = [c.strip() for c in row["channels"].split(",")] if _optional(row.get("channels")) else None
    try:
        channels = section_metadata(row["path"], pixel_size_um=_optional(row.get("pixel_size")),
                                    channel_names=names)["channels"]
    except InputError as exc:
        return [str(exc).split(": ", 1)[-1]]
    if row["modality"] in ("fluorescence", "fluorescence_control"):
        missing = {role: ch for role, ch in config.microscopy.channels.items() if ch not in channels}
        if missing:
            out.append(f"channels {missing} (microscopy.channels) are not in the file; its channels are {channels}")
    return out


def _check_msi(row: dict, config: Config) -> list[str]:
    from .imzml import acquired_mz_range, read_imzml_index

    try:
        index = read_imzml_index(row["path"])
    except InputError as exc:
        return [str(exc).split(": ", 1)[-1]]
    out = []
    if index.pixel_size is None and _optional(row.get("pixel_size")) is None:
        out.append("no pixel size in the imzML and none in the sample sheet (column pixel_size)")
    lo, hi = acquired_mz_range(index)
    targets = list(config.msi.analytes) + ([config.msi.internal_standard] if config.msi.internal_standard else [])
    for a in targets:
        half = a.mz * a.ppm * 1e-6
        if np.isfinite(lo) and (a.mz + half < lo or a.mz - half > hi):
            out.append(f"analyte {a.name} (m/z {a.mz:g} ± {a.ppm:g} ppm) is outside the acquired m/z range "
                       f"{lo:.4f}-{hi:.4f}")
    return out


def _check_volume(row: dict) -> list[str]:
    import SimpleITK as sitk

    from .rtstruct import is_rtstruct, structure_names
    from .volumes import dicom_files, grid_difference

    path = row["path"]
    try:
        files = dicom_files(path, _optional(row.get("dicom_series"))) if Path(path).is_dir() else [path]
        reader = sitk.ImageFileReader()
        reader.SetFileName(files[0])
        reader.ReadImageInformation()
    except (InputError, RuntimeError) as exc:
        return [str(exc).split(": ", 1)[-1].splitlines()[0]]
    mask = _optional(row.get("mask"))
    if not mask:
        return []
    if not Path(mask).exists():
        return [f"mask {mask} does not exist"]
    if is_rtstruct(mask):
        name = _optional(row.get("structure"))
        names = structure_names(mask)
        if (name is None and len(names) != 1) or (name is not None and name not in names):
            return [f"RT structure set {mask}: structure {name!r} not chosen or not there; it holds {names}"]
        return []
    if not Path(path).is_dir():  # a one-file volume: compare the two headers (a series' grid needs all slices)
        m = sitk.ImageFileReader()
        m.SetFileName(mask)
        try:
            m.ReadImageInformation()
        except RuntimeError as exc:
            return [f"mask {mask}: {str(exc).splitlines()[0]}"]
        differs = grid_difference(reader, m)
        if differs:
            return [f"mask {mask} is not on the volume's grid: {differs}"]
    return []


def _plane_shape(path: str) -> tuple | None:
    """Rows and columns of a TIFF's first image from its header (None for other formats)."""
    if Path(path).suffix.lower() not in (".tif", ".tiff"):
        return None
    import tifffile

    with tifffile.TiffFile(path) as tif:
        return tuple(tif.series[0].shape[-2:]) if tif.series[0].axes[-1] != "S" else tuple(tif.series[0].shape[-3:-1])


def _check_labels(row: dict, sheet: pd.DataFrame) -> list[str]:
    """A nuclei label image must be on its fluorescence section's pixel grid."""
    fluo = sheet[(sheet["sample"] == row.get("sample")) & (sheet["modality"] == "fluorescence")]
    if fluo.empty or not Path(str(fluo["path"].iloc[0])).exists():
        return []
    try:
        mine, theirs = _plane_shape(str(row["path"])), _plane_shape(str(fluo["path"].iloc[0]))
    except (OSError, ValueError, IndexError) as exc:
        return [f"cannot read the label image's header: {exc}"]
    if mine and theirs and mine != theirs:
        return [f"label image of {mine[0]} x {mine[1]} pixels, but the fluorescence section has "
                f"{theirs[0]} x {theirs[1]}"]
    return []


def check_inputs(sheet: pd.DataFrame, config: Config) -> list[Problem]:
    """Every problem of a loaded sample sheet's files (see the module docstring), in sheet order."""
    problems = []
    for row in sheet.to_dict("records"):
        path, modality = str(row["path"]), row["modality"]
        sample = row.get("sample") or ""
        if not Path(path).exists():
            problems.append(Problem(sample, modality, path, "file not found"))
            continue
        if modality in ("fluorescence", "he", "fluorescence_control"):
            found = _check_section(row, config)
        elif modality in ("msi", "msi_standard"):
            found = _check_msi(row, config)
        elif modality in ("volume", "ct", "mr"):
            found = _check_volume(row)
        elif modality == "labels":
            found = _check_labels(row, sheet)
        else:
            found = []
        problems += [Problem(sample, modality, path, what) for what in found]
    return problems


def report(problems: list[Problem]) -> str:
    """The problems as one message (a line each)."""
    return f"{len(problems)} problem(s) with the inputs:\n" + "\n".join("  " + p.line() for p in problems)
