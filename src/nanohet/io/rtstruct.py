"""DICOM RT Structure Sets (RTSTRUCT): named contours rasterised onto an image's voxel grid.

Each structure (``StructureSetROISequence``) has closed planar contours (``ROIContourSequence`` ->
``ContourSequence``, points in patient coordinates, mm). A contour is mapped into the image's continuous voxel
index through the image's origin, spacing and direction, assigned to the slice its points lie on, and filled:
a voxel belongs to it when its centre lies inside the polygon (scikit-image's point-in-polygon fill). Several
contours on one slice combine by exclusive or, so a contour inside another is a hole, as the DICOM standard
leaves holes to be drawn (PS3.3 C.8.8.6). Read with pydicom.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError


def _dataset(path: str | os.PathLike):
    import pydicom

    try:
        ds = pydicom.dcmread(str(path))
    except Exception as exc:
        raise InputError(f"{path}: not a readable DICOM file ({exc})") from None
    if str(ds.get("Modality", "")) != "RTSTRUCT":
        raise InputError(f"{path}: modality {ds.get('Modality')}, not an RT structure set (RTSTRUCT)")
    return ds


def is_rtstruct(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a DICOM RT structure set file."""
    path = Path(path)
    if not path.is_file() or path.name.lower().endswith((".nii", ".nii.gz", ".nrrd", ".mha", ".mhd")):
        return False
    import pydicom

    try:
        return str(pydicom.dcmread(str(path), stop_before_pixels=True).get("Modality", "")) == "RTSTRUCT"
    except Exception:
        return False


def structure_names(path: str | os.PathLike) -> list[str]:
    """The names of the structures of an RT structure set, in file order."""
    return [str(r.ROIName) for r in _dataset(path).StructureSetROISequence]


def rasterise_structure(path: str | os.PathLike, reference: sitk.Image, name: str | None = None) -> sitk.Image:
    """The structure ``name`` (the only one when None) as a uint8 mask on the grid of ``reference``.

    Raises
    ------
    InputError
        Naming the file: no such structure (listing the names), several and none chosen, a structure without
        contours, contours that are not closed planar polygons or lie outside the image.
    """
    ds = _dataset(path)
    rois = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
    if name is None:
        if len(rois) != 1:
            raise InputError(f"{path}: {len(rois)} structures {sorted(rois.values())}; name one (sample sheet "
                             "column `structure`)")
        name = next(iter(rois.values()))
    numbers = [k for k, v in rois.items() if v == name]
    if not numbers:
        raise InputError(f"{path}: no structure {name!r}; the structures are {sorted(rois.values())}")
    contours = [c for item in ds.ROIContourSequence if int(item.ReferencedROINumber) == numbers[0]
                for c in getattr(item, "ContourSequence", [])]
    if not contours:
        raise InputError(f"{path}: structure {name!r} has no contours")
    size = reference.GetSize()  # (x, y, z)
    mask = np.zeros(size[::-1], dtype=bool)
    origin = np.asarray(reference.GetOrigin())
    spacing = np.asarray(reference.GetSpacing())
    inverse = np.linalg.inv(np.asarray(reference.GetDirection()).reshape(3, 3))
    from skimage.draw import polygon

    outside = 0
    for c in contours:
        kind = str(c.get("ContourGeometricType", "CLOSED_PLANAR"))
        points = np.asarray(c.ContourData, dtype=np.float64).reshape(-1, 3)
        if kind == "POINT" or len(points) < 3:
            continue
        if kind != "CLOSED_PLANAR":
            raise InputError(f"{path}: structure {name!r} has a {kind} contour; only closed planar ones are filled")
        index = (inverse @ (points - origin).T).T / spacing  # continuous (x, y, z) voxel index
        z = np.rint(index[:, 2])
        if np.ptp(index[:, 2]) > 0.5:
            raise InputError(f"{path}: a contour of {name!r} is not in one slice of the image (its points span "
                             f"{np.ptp(index[:, 2]):.2f} slices); resample the image to the contours' planes")
        k = int(z[0])
        if not 0 <= k < size[2]:
            outside += 1
            continue
        rr, cc = polygon(index[:, 1], index[:, 0], shape=mask.shape[1:])
        filled = np.zeros(mask.shape[1:], dtype=bool)
        filled[rr, cc] = True
        mask[k] ^= filled
    if outside == len(contours):
        raise InputError(f"{path}: every contour of {name!r} lies outside the image it is drawn on")
    out = sitk.GetImageFromArray(mask.astype(np.uint8))
    out.CopyInformation(reference)
    return out


def dice(a: sitk.Image, b: sitk.Image) -> float:
    """Dice coefficient of two masks on one grid (non-zero voxels)."""
    x, y = sitk.GetArrayViewFromImage(a) > 0, sitk.GetArrayViewFromImage(b) > 0
    total = x.sum() + y.sum()
    return float(2.0 * (x & y).sum() / total) if total else float("nan")


def read_mask(path: str | os.PathLike, reference: sitk.Image, structure: str | None = None) -> sitk.Image:
    """A tumour mask for ``reference``: an image file as it is (NIfTI, NRRD, MHA, DICOM series), or an RT
    structure set's ``structure`` rasterised onto the reference's grid."""
    if is_rtstruct(path):
        return rasterise_structure(path, reference, structure)
    if structure:
        raise InputError(f"{path}: a structure ({structure!r}) is named but the mask is not an RT structure set")
    from .volumes import read_volume

    return read_volume(path)
