"""The tissue of an MSI acquisition without a microscopy section (an MSI-only sample).

With a fluorescence section the tissue comes from the microscopy masks; without one it comes from the
spectra themselves: tissue spectra carry far more ions than the matrix-covered glass around the section, so
the total ion current (TIC) separates the two. The threshold is Otsu's (Otsu, IEEE Trans Syst Man Cybern
1979;9:62) on log(1 + TIC) over the acquired pixels, and Otsu's separability measure tells whether the TIC
histogram has two classes at all (an acquisition restricted to the tissue has one).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import InputError

TISSUE_MASK_METHODS = ("tic_otsu", "acquired")
# Otsu's separability eta = between-class / total variance: 0.64 for one normal class split at its mean,
# 0.75 for a uniform histogram, 0.8 for two equal normal classes 4 SD apart; below this there is no clear
# second class (glass) and every acquired pixel is probably tissue.
MIN_SEPARABILITY = 0.8


def otsu_separability(values: np.ndarray, threshold: float) -> float:
    """Otsu's separability measure eta of ``values`` split at ``threshold``: the between-class variance over
    the total variance (Otsu 1979, eq. 12), in [0, 1]; NaN for constant values."""
    v = np.asarray(values, dtype=np.float64).ravel()
    total = v.var()
    if v.size == 0 or total == 0:
        return float("nan")
    high = v > threshold
    w1 = high.mean()
    if w1 in (0.0, 1.0):
        return 0.0
    between = w1 * (1 - w1) * (v[high].mean() - v[~high].mean()) ** 2
    return float(between / total)


def msi_tissue_mask(tic: np.ndarray, acquired: np.ndarray, method: str = "tic_otsu",
                    where: str = "MSI acquisition") -> tuple[np.ndarray, dict]:
    """The tissue of an MSI acquisition from its spectra.

    Parameters
    ----------
    tic : (Y, X) array
        Total ion current per pixel (raw counts; NaN or anything where not acquired).
    acquired : (Y, X) bool array
        Pixels with a spectrum.
    method : {"tic_otsu", "acquired"}
        ``tic_otsu``: pixels whose log(1 + TIC) is above Otsu's threshold, holes filled; ``acquired``: every
        acquired pixel (an acquisition drawn inside the tissue).
    where : str
        Names the sample and file in errors.

    Returns
    -------
    tissue : (Y, X) bool array
    info : dict
        ``method``, ``threshold_tic`` (counts; NaN for ``acquired``), ``separability`` (Otsu's eta; NaN for
        ``acquired``) and ``fraction_of_acquired``.

    Raises
    ------
    InputError
        Naming ``where``: an unknown method, no acquired pixel, or an empty tissue.
    """
    from skimage.filters import threshold_otsu

    if method not in TISSUE_MASK_METHODS:
        raise InputError(f"{where}: tissue mask method {method!r} is not one of {list(TISSUE_MASK_METHODS)}")
    acquired = np.asarray(acquired, dtype=bool) & np.isfinite(tic)
    if not acquired.any():
        raise InputError(f"{where}: no acquired pixel, so no tissue")
    info = {"method": method, "threshold_tic": np.nan, "separability": np.nan}
    if method == "acquired":
        tissue = acquired
    else:
        logs = np.log1p(np.clip(np.asarray(tic, dtype=np.float64)[acquired], 0, None))
        if np.ptp(logs) == 0:
            tissue = acquired
        else:
            t = float(threshold_otsu(logs))
            info.update(threshold_tic=float(np.expm1(t)), separability=otsu_separability(logs, t))
            tissue = np.zeros(acquired.shape, dtype=bool)
            tissue[acquired] = logs > t
            tissue = ndimage.binary_fill_holes(tissue) & acquired
    if not tissue.any():
        raise InputError(f"{where}: the tissue mask from the TIC is empty")
    info["fraction_of_acquired"] = float(tissue.sum() / acquired.sum())
    return tissue, info
