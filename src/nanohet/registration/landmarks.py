"""Landmark pairs: reading them, the transform they define, and their error.

A landmark CSV holds corresponding points of a moving and a fixed image, in
physical units (µm for sections): columns ``fixed_x, fixed_y, moving_x,
moving_y`` and optionally ``role`` (``init``: used to compute the initial
transform; ``check``: only used to measure the target registration error
after registration; empty or missing: both).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from ..errors import InputError

COLUMNS = ("fixed_x", "fixed_y", "moving_x", "moving_y")


@dataclass(frozen=True)
class Landmarks:
    """Corresponding points, shape (N, 2) each, ``(x, y)`` in physical units.

    Attributes
    ----------
    fixed, moving : ndarray, shape (N, 2)
    init : ndarray of bool, shape (N,)
        Points that define the initial transform.
    check : ndarray of bool, shape (N,)
        Points on which the registration error is measured.
    source : str
        File the points came from (for messages).
    """

    fixed: np.ndarray
    moving: np.ndarray
    init: np.ndarray
    check: np.ndarray
    source: str = ""

    @property
    def independent_check(self) -> bool:
        """True when the error is measured on points not used to initialise."""
        return bool(self.check.any() and not (self.check & self.init).any())


def read_landmarks(path, sample: str = "") -> Landmarks:
    """Read and validate a landmark CSV (see the module docstring).

    Raises
    ------
    InputError
        Missing file or columns, non-numeric or non-finite coordinates, an
        unknown role, or fewer than three non-collinear ``init`` pairs. The
        message names the sample and the file.
    """
    path = Path(path)
    where = f"sample {sample}: {path}" if sample else str(path)
    if not path.is_file():
        raise InputError(f"{where}: landmark file not found")
    try:
        table = pd.read_csv(path, comment="#")
    except Exception as exc:  # pandas raises several types for unreadable text
        raise InputError(f"{where}: not a readable CSV ({exc})") from exc
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{where}: missing landmark columns {missing}; expected {list(COLUMNS)} (+ optional role)")
    try:
        xy = table[list(COLUMNS)].astype(float).to_numpy()
    except ValueError as exc:
        raise InputError(f"{where}: landmark coordinates must be numbers ({exc})") from exc
    bad = np.flatnonzero(~np.isfinite(xy).all(axis=1))
    if bad.size:
        raise InputError(f"{where}: landmark row {int(bad[0]) + 2} has an empty or non-finite coordinate")
    roles = (table["role"].fillna("").astype(str).str.strip().str.lower() if "role" in table.columns
             else pd.Series([""] * len(table)))
    unknown = sorted(set(roles) - {"", "init", "check"})
    if unknown:
        raise InputError(f"{where}: unknown landmark role(s) {unknown}; use init, check or leave empty")
    init = (roles != "check").to_numpy()
    check = (roles != "init").to_numpy()
    lm = Landmarks(xy[:, :2], xy[:, 2:], init, check, str(path))
    fixed = lm.fixed[init]
    if fixed.shape[0] < 3 or np.linalg.matrix_rank(np.c_[fixed, np.ones(len(fixed))]) < 3:
        raise InputError(f"{where}: an affine initialisation needs at least 3 non-collinear init landmark pairs, "
                         f"found {int(init.sum())}")
    return lm


def landmark_transform(fixed_points: np.ndarray, moving_points: np.ndarray) -> sitk.AffineTransform:
    """Least-squares affine transform mapping fixed points onto moving points.

    Parameters
    ----------
    fixed_points, moving_points : ndarray, shape (N, 2), N >= 3
        Corresponding ``(x, y)`` points in physical units.

    Returns
    -------
    sitk.AffineTransform
        Fixed -> moving (ITK's resampling convention), centred on the mean
        fixed point. A mirrored section gives a matrix with a negative
        determinant. Same model as ``sitk.LandmarkBasedTransformInitializer``
        with an affine transform (used by napari-imsmicrolink for IMS
        fiducials).
    """
    f = np.asarray(fixed_points, float)
    m = np.asarray(moving_points, float)
    centre = f.mean(axis=0)
    design = np.c_[f - centre, np.ones(len(f))]
    coef, *_ = np.linalg.lstsq(design, m, rcond=None)  # (3, 2): rows x, y, 1
    matrix = coef[:2].T
    tx = sitk.AffineTransform(2)
    tx.SetCenter(tuple(centre))
    tx.SetMatrix(tuple(matrix.ravel()))
    tx.SetTranslation(tuple(coef[2] - centre))
    return tx
