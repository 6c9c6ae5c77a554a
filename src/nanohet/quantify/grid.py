"""The analysis grid (the reference frame's common grid) and microscopy masks on it and on native MSI pixels."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..atomic import write_text_atomic
from ..errors import InputError
from ..image import SectionImage, block_origin, block_reduce_mean, to_sitk
from ..registration.graph import invert
from ..registration.resample import reference_grid, resample_to
from .metrics import distance_to_mask_um


@dataclass(frozen=True)
class AnalysisGrid:
    """A grid over the reference section made of whole ``factor x factor`` blocks of its pixels.

    Attributes
    ----------
    factor : int
        Reference pixels per grid pixel along each axis.
    shape : (int, int)
        ``(Y, X)`` of the grid.
    spacing, origin : (float, float)
        Grid pixel size and centre of pixel [0, 0], µm, ``(x, y)``.
    """

    factor: int
    shape: tuple
    spacing: tuple
    origin: tuple

    @classmethod
    def over(cls, reference: SectionImage, spacing_um: float) -> "AnalysisGrid":
        """The grid of about ``spacing_um`` over ``reference`` (trailing pixels that fill no block dropped)."""
        return cls.over_extent(reference.shape_yx, reference.spacing, reference.origin, spacing_um)

    @classmethod
    def over_extent(cls, shape_yx, spacing, origin, spacing_um: float) -> "AnalysisGrid":
        """:meth:`over` an image of ``shape_yx`` pixels of ``spacing`` (µm) whose pixel [0, 0] is centred at
        ``origin`` (µm), known from its header."""
        factor = max(int(round(spacing_um / spacing[0])), 1)
        shape = (int(shape_yx[0]) // factor, int(shape_yx[1]) // factor)
        return cls(factor, shape, (spacing[0] * factor, spacing[1] * factor), block_origin(origin, spacing, factor))

    def write(self, path) -> None:
        write_text_atomic(path, json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def read(cls, path) -> "AnalysisGrid":
        d = json.loads(Path(path).read_text())
        return cls(int(d["factor"]), tuple(d["shape"]), tuple(d["spacing"]), tuple(d["origin"]))

    def image(self) -> sitk.Image:
        """An empty SimpleITK image of the grid, to resample onto."""
        return reference_grid(self.shape, self.spacing, self.origin)

    def reduce(self, array: np.ndarray) -> np.ndarray:
        """Block mean of a reference-resolution array onto the grid."""
        return block_reduce_mean(array, self.factor)

    def check(self, image: SectionImage, where: str) -> None:
        """Refuse an image that is not on this grid."""
        if image.shape_yx != tuple(self.shape):
            raise InputError(f"{where}: grid {image.shape_yx} does not match the analysis grid {tuple(self.shape)}")


def grid_masks(masks: SectionImage, grid: AnalysisGrid) -> tuple[np.ndarray, np.ndarray]:
    """Tissue and viable masks on the grid: a grid pixel is in when at least half of it is."""
    return tuple(grid.reduce(masks.channel(name).astype(np.float32)) >= 0.5 for name in ("tissue", "viable"))


def masks_on_grid(masks: SectionImage, grid: AnalysisGrid, vessel_distance_um: np.ndarray):
    """Tissue and viable masks (:func:`grid_masks`) and the mean vessel distance on the grid."""
    tissue, viable = grid_masks(masks, grid)
    return tissue, viable, grid.reduce(vessel_distance_um)


def masks_on_msi_grid(masks: SectionImage, msi: SectionImage, transform: sitk.Transform) -> SectionImage:
    """Microscopy masks averaged over each native MSI pixel's footprint.

    Each mask (and the distance to the nearest vessel, µm) is box-averaged over
    one MSI pixel at microscopy resolution, then sampled at the MSI pixel centres
    mapped into the section through the inverse registration transform. Channels:
    ``tissue_fraction``, ``viable_fraction``, ``vessel_distance_um``; on the MSI
    grid (spacing and origin of the MSI stack), so MSI statistics can be computed
    on native MSI pixels.

    Parameters
    ----------
    transform : sitk.Transform
        Reference (section) frame -> MSI frame, as composed by the registration.
    """
    size = max(int(round(msi.spacing[0] / masks.spacing[0])), 1)
    dist = distance_to_mask_um(masks.channel("vessels") > 0, masks.spacing)
    inverse = invert(transform)  # MSI -> section (numerically for a B-spline deformation)
    ref = reference_grid(msi.shape_yx, msi.spacing, msi.origin)
    planes = []
    for arr in (masks.channel("tissue"), masks.channel("viable"), dist):
        avg = ndimage.uniform_filter(np.asarray(arr, dtype=np.float32), size=size)
        planes.append(resample_to(to_sitk(avg, masks.spacing, masks.origin), ref, inverse))
    return SectionImage(np.stack(planes).astype(np.float32), ["tissue_fraction", "viable_fraction",
                                                              "vessel_distance_um"], msi.spacing, msi.origin)
