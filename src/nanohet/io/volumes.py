"""3-D volumes (PET/SPECT/MR/CT) in physical space (mm): reading and writing with SimpleITK."""

from __future__ import annotations

import os

import SimpleITK as sitk

from ..atomic import atomic_path
from ..errors import InputError


def read_volume(path: str | os.PathLike) -> sitk.Image:
    """Read a NIfTI, NRRD, MHA or DICOM-series folder as a SimpleITK image (mm).

    Raises
    ------
    InputError
        When the file or folder cannot be read as an image.
    """
    path = os.fspath(path)
    try:
        if os.path.isdir(path):
            reader = sitk.ImageSeriesReader()
            files = reader.GetGDCMSeriesFileNames(path)
            if not files:
                raise InputError(f"{path}: folder holds no DICOM series")
            reader.SetFileNames(files)
            return reader.Execute()
        return sitk.ReadImage(path)
    except RuntimeError as exc:
        raise InputError(f"{path}: cannot read as a volume ({str(exc).splitlines()[0]})") from exc


def write_volume(path: str | os.PathLike, image: sitk.Image) -> None:
    """Write a volume atomically (format chosen by the extension, e.g. ``.nii.gz``)."""
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)


def frame_of_reference(path: str | os.PathLike) -> str | None:
    """The DICOM FrameOfReferenceUID (0020,0052) of a DICOM series folder or file, else None.

    Volumes with the same frame of reference share the scanner's patient coordinates, so they are
    aligned as they are (e.g. the PET, CT and MR of one session on a hybrid scanner).
    """
    path = os.fspath(path)
    try:
        if os.path.isdir(path):
            files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(path)
            if not files:
                return None
            path = files[0]
        reader = sitk.ImageFileReader()
        reader.SetFileName(path)
        reader.ReadImageInformation()
        key = "0020|0052"
        return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else None
    except RuntimeError:
        return None
