"""3-D volumes (PET/SPECT/MR/CT) in physical space (mm): reading and writing with SimpleITK."""

from __future__ import annotations

import os

import SimpleITK as sitk

from ..atomic import atomic_path
from ..errors import InputError


def dicom_series(folder: str | os.PathLike) -> list[dict]:
    """The DICOM series of a folder: ``uid``, ``description`` (SeriesDescription), ``modality`` and ``files``
    (in slice order) of each."""
    folder = os.fspath(folder)
    out = []
    for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder):
        files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, uid))
        reader = sitk.ImageFileReader()
        reader.SetFileName(files[0])
        reader.ReadImageInformation()
        tag = {k: reader.GetMetaData(k).strip() if reader.HasMetaDataKey(k) else "" for k in ("0008|103e", "0008|0060")}
        out.append({"uid": uid, "description": tag["0008|103e"], "modality": tag["0008|0060"], "files": files})
    return out


def dicom_files(path: str | os.PathLike, series: str | None = None) -> list[str]:
    """The files of one DICOM series: a folder's only series, or the one whose SeriesInstanceUID or
    SeriesDescription is ``series``; a single DICOM file as it is.

    Raises
    ------
    InputError
        A folder without DICOM series; several series and none (or an ambiguous one) chosen, listing them all
        with their UIDs, descriptions, modalities and file counts; a chosen series that is not there.
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        return [path]
    found = dicom_series(path)
    if not found:
        raise InputError(f"{path}: folder holds no DICOM series")
    listing = "; ".join(f"{s['uid']} ({s['description'] or 'no description'}, {s['modality']}, "
                        f"{len(s['files'])} files)" for s in found)
    if series:
        chosen = [s for s in found if series in (s["uid"], s["description"])]
        if len(chosen) != 1:
            raise InputError(f"{path}: {'no' if not chosen else len(chosen)} series match {series!r} "
                             f"(SeriesInstanceUID or SeriesDescription); the folder holds: {listing}")
        return chosen[0]["files"]
    if len(found) > 1:
        raise InputError(f"{path}: {len(found)} DICOM series; choose one in the sample sheet's column dicom_series "
                         f"(its SeriesInstanceUID or SeriesDescription): {listing}")
    return found[0]["files"]


def _slice_spacing(file: str) -> float | None:
    reader = sitk.ImageFileReader()
    reader.SetFileName(file)
    reader.ReadImageInformation()
    for key in ("0018|0088", "0018|0050"):  # SpacingBetweenSlices, then SliceThickness
        if reader.HasMetaDataKey(key):
            try:
                value = float(reader.GetMetaData(key).strip())
            except ValueError:
                continue
            if value > 0:
                return value
    return None


def read_volume(path: str | os.PathLike, series: str | None = None) -> sitk.Image:
    """Read a NIfTI, NRRD, MHA, DICOM file or DICOM-series folder as a SimpleITK image (mm).

    A folder with several series needs ``series`` (see :func:`dicom_files`). A single DICOM slice gets its
    thickness from SpacingBetweenSlices or SliceThickness (a reader would otherwise assume 1 mm); without
    either it is refused, since no 3-D measure is defined on it.

    Raises
    ------
    InputError
        When the file or folder cannot be read as an image, or as above.
    """
    path = os.fspath(path)
    try:
        is_dicom = os.path.isdir(path) or path.lower().endswith((".dcm", ".ima"))
        files = dicom_files(path, series) if is_dicom else [path]
        if len(files) > 1:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(files)
            return reader.Execute()
        image = sitk.ReadImage(files[0])
        if is_dicom and image.GetDimension() == 3 and image.GetSize()[2] == 1:
            thickness = _slice_spacing(files[0])
            if thickness is None:
                raise InputError(f"{path}: a single DICOM slice without SliceThickness or SpacingBetweenSlices; "
                                 "its thickness (and any volume or 3-D measure) is unknown")
            image.SetSpacing(image.GetSpacing()[:2] + (thickness,))
        return image
    except RuntimeError as exc:
        raise InputError(f"{path}: cannot read as a volume ({str(exc).splitlines()[0]})") from exc


def grid_difference(a, b, tolerance: float = 1e-4) -> str:
    """What differs between the grids of two images (size, spacing, origin, direction, each with both values),
    or "" when they share one grid. ``a`` and ``b``: SimpleITK images, or image file readers after
    ``ReadImageInformation`` (headers only)."""
    parts = []
    if a.GetSize() != b.GetSize():
        parts.append(f"size {a.GetSize()} vs {b.GetSize()}")
    for name, x, y in (("spacing", a.GetSpacing(), b.GetSpacing()), ("origin", a.GetOrigin(), b.GetOrigin()),
                       ("direction", a.GetDirection(), b.GetDirection())):
        if len(x) != len(y) or any(abs(p - q) > tolerance * max(1.0, abs(p)) for p, q in zip(x, y)):
            parts.append(f"{name} {tuple(round(v, 4) for v in x)} vs {tuple(round(v, 4) for v in y)}")
    return "; ".join(parts)


def write_volume(path: str | os.PathLike, image: sitk.Image) -> None:
    """Write a volume atomically (format chosen by the extension, e.g. ``.nii.gz``)."""
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)


def frame_of_reference(path: str | os.PathLike, series: str | None = None) -> str | None:
    """The DICOM FrameOfReferenceUID (0020,0052) of a DICOM series folder or file, else None.

    Volumes with the same frame of reference share the scanner's patient coordinates, so they are
    aligned as they are (e.g. the PET, CT and MR of one session on a hybrid scanner).
    """
    path = os.fspath(path)
    try:
        if os.path.isdir(path):
            try:
                path = dicom_files(path, series)[0]
            except InputError:
                return None
        reader = sitk.ImageFileReader()
        reader.SetFileName(path)
        reader.ReadImageInformation()
        key = "0020|0052"
        return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else None
    except RuntimeError:
        return None
