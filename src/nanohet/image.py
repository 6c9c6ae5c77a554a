"""A minimal in-memory image model that carries physical metadata.

Sections use micrometres, volumes millimetres. Axes follow SimpleITK: the
spacing and origin tuples are ``(x, y)`` while arrays are indexed ``[y, x]``.
The origin is the physical position of the *centre* of pixel ``[0, 0]``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk


@dataclass
class SectionImage:
    """A multi-channel 2-D image of a tissue section.

    Attributes
    ----------
    data : ndarray, shape (C, Y, X)
        Channel stack. RGB images are stored as three channels named
        ``R``, ``G`` and ``B``.
    channels : list of str
        One name per channel.
    spacing : tuple of float
        Pixel size ``(x, y)`` in micrometres.
    origin : tuple of float, optional
        Physical position ``(x, y)`` of the centre of pixel [0, 0], in µm.
    """

    data: np.ndarray
    channels: list[str]
    spacing: tuple[float, float]
    origin: tuple[float, float] = (0.0, 0.0)
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.data.ndim != 3:
            raise ValueError(f"SectionImage data must be (C, Y, X), got shape {self.data.shape}")
        if len(self.channels) != self.data.shape[0]:
            raise ValueError(
                f"{len(self.channels)} channel names for {self.data.shape[0]} channels"
            )
        if not all(np.isfinite(s) and s > 0 for s in self.spacing):
            raise ValueError(f"pixel spacing must be positive, got {self.spacing}")

    def channel(self, name: str) -> np.ndarray:
        """Return the 2-D array of the channel called ``name``."""
        try:
            return self.data[self.channels.index(name)]
        except ValueError:
            raise KeyError(
                f"no channel named {name!r}; the image has {self.channels}"
            ) from None

    @property
    def shape_yx(self) -> tuple[int, int]:
        return int(self.data.shape[1]), int(self.data.shape[2])


def to_sitk(array: np.ndarray, spacing, origin=(0.0, 0.0)) -> sitk.Image:
    """Wrap a 2-D array as a float32 SimpleITK image with physical metadata."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
    img.SetSpacing(tuple(float(s) for s in spacing))
    img.SetOrigin(tuple(float(o) for o in origin))
    return img


def block_reduce_mean(array: np.ndarray, factor: int) -> np.ndarray:
    """Average non-overlapping ``factor x factor`` blocks (NaN-aware: NaN pixels are left out, an all-NaN block
    is NaN).

    Trailing rows/columns that do not fill a whole block are dropped.
    """
    if factor == 1:
        return array.astype(np.float64)
    ny, nx = (array.shape[0] // factor) * factor, (array.shape[1] // factor) * factor
    blocks = array[:ny, :nx].astype(np.float64).reshape(ny // factor, factor, nx // factor, factor)
    if not np.isnan(blocks).any():
        return blocks.mean(axis=(1, 3))
    with warnings.catch_warnings():  # an all-NaN block is NaN, as documented, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(blocks, axis=(1, 3))


def convolve_same(values: np.ndarray, kernel: np.ndarray, workers: int = 1) -> np.ndarray:
    """The linear convolution of ``values`` with ``kernel`` (any dimension), cropped to ``values``' shape and
    centred as ``scipy.signal.fftconvolve(values, kernel, mode="same")``, computed with real FFTs of a fast
    length. (scipy.signal takes most of a second to import, in every job that would use it.)"""
    from scipy import fft

    dtype = np.result_type(values, kernel, np.float32)  # float32 stays float32, as in scipy.signal
    values, kernel = np.asarray(values, dtype=dtype), np.asarray(kernel, dtype=dtype)
    full = [a + b - 1 for a, b in zip(values.shape, kernel.shape)]
    size = [fft.next_fast_len(n, real=True) for n in full]
    axes = tuple(range(values.ndim))
    spectrum = fft.rfftn(values, size, axes=axes, workers=workers) * fft.rfftn(kernel, size, axes=axes, workers=workers)
    out = fft.irfftn(spectrum, size, axes=axes, workers=workers)
    start = [(n - s) // 2 for n, s in zip(full, values.shape)]
    return out[tuple(slice(a, a + s) for a, s in zip(start, values.shape))]


def block_origin(origin, spacing, factor: int):
    """Physical origin of the grid produced by :func:`block_reduce_mean`."""
    return tuple(o + (factor - 1) * s / 2.0 for o, s in zip(origin, spacing))


def resolve_pixel_size(declared, given, path, what: str = "the file") -> tuple[float, float]:
    """Reconcile the pixel size a file declares with the one given in the sample sheet.

    Parameters
    ----------
    declared : (float, float) or None
        ``(x, y)`` in µm from the file's metadata, or None (or a None member) if absent.
    given : float or None
        The sample sheet's ``pixel_size`` (µm).
    path : path-like
        Named in error messages.

    The file's value is used unless the sample sheet gives one: the sheet overrides (a vendor's metadata can be
    wrong), with a warning in the log when the two disagree by more than 1 % (one of them is wrong).

    Raises
    ------
    InputError
        No pixel size from either source.
    """
    import logging

    from .errors import InputError

    if declared is None or declared[0] is None or declared[1] is None:
        if given is None:
            raise InputError(f"{path}: no pixel size in {what} and none given in the sample sheet "
                             "(column pixel_size)")
        return (float(given), float(given))
    if given is not None:
        if abs(declared[0] - given) > 0.01 * given or abs(declared[1] - given) > 0.01 * given:
            logging.getLogger("nanohet").warning(
                "%s: %s says %.4g x %.4g µm/pixel, the sample sheet %.4g µm: using the sample sheet's", path, what,
                declared[0], declared[1], given)
        return (float(given), float(given))
    return (float(declared[0]), float(declared[1]))
