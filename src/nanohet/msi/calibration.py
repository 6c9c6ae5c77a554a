"""Calibration of normalised ion images into concentrations from standards of known concentration.

Quantitative MSI does not assume that an analyte ionises like its internal standard: it measures the
response on standards of known concentration imaged like the samples, e.g. a mimetic-tissue series
(control tissue homogenate spiked with the analyte at several levels, sectioned and sprayed with the
internal standard with the samples; Swales et al., Sci Rep 2016;6:37648). The calibration curve is the straight line through the standards' mean normalised
responses against their concentrations; a pixel's concentration is its normalised response mapped back
through the line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..errors import InputError

# ICH Q2(R1) (2005), sections 6.3 and 7.3 (limits based on the calibration curve):
# LOD = 3.3 sigma / slope and LOQ = 10 sigma / slope, sigma the residual standard deviation of the line.
LOD_FACTOR = 3.3
LOQ_FACTOR = 10.0


@dataclass(frozen=True)
class Calibration:
    """A linear calibration curve ``response = intercept + slope * concentration`` of one analyte.

    ``response`` is the normalised ion intensity (e.g. analyte / internal standard); ``unit`` is the unit
    of the standards' concentrations. ``residual_sd`` (response units), ``lod`` and ``loq`` (concentration
    units) are NaN when the standards have only two levels (no degree of freedom left).
    """

    analyte: str
    slope: float
    intercept: float
    unit: str
    n_standards: int
    n_levels: int
    r_squared: float
    residual_sd: float
    lod: float
    loq: float

    def concentration(self, response: np.ndarray) -> np.ndarray:
        """Concentrations (``unit``) of normalised responses (any shape; NaN stays NaN)."""
        return (np.asarray(response, dtype=np.float64) - self.intercept) / self.slope

    def response(self, concentration: np.ndarray) -> np.ndarray:
        """Normalised responses the curve predicts at ``concentration``."""
        return self.intercept + self.slope * np.asarray(concentration, dtype=np.float64)


def standard_response(image: np.ndarray, where: str) -> tuple[float, int]:
    """Mean normalised response of one standard over its finite pixels, and the number of pixels.

    The mean, not the median: the per-pixel ratios are skewed by counting noise, and a mean is what the
    same ratio images of the samples are averaged with.
    """
    finite = np.asarray(image, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise InputError(f"{where}: no pixel with a finite normalised response (no internal-standard signal?)")
    return float(finite.mean()), int(finite.size)


def fit_calibration(analyte: str, concentrations, responses, unit: str, where: str = "") -> Calibration:
    """Least-squares line through standards' responses against their known concentrations.

    Parameters
    ----------
    analyte : str
    concentrations : array_like, shape (n,)
        Known concentrations of the standards (``unit``, >= 0).
    responses : array_like, shape (n,)
        Their mean normalised responses (:func:`standard_response`).
    unit : str
    where : str
        Names the standards in error messages (e.g. the sample sheet and its files).

    Returns
    -------
    Calibration
        With R², the residual standard deviation and the ICH Q2(R1) detection and quantitation limits
        (3.3 and 10 residual SDs over the slope).

    Raises
    ------
    InputError
        With fewer than two distinct concentrations, a non-finite response, or a slope that is not
        positive (the responses do not increase with concentration).
    """
    c = np.asarray(concentrations, dtype=np.float64)
    r = np.asarray(responses, dtype=np.float64)
    label = f"{where}: " if where else ""
    if c.shape != r.shape or c.ndim != 1:
        raise ValueError("concentrations and responses must be 1-D arrays of one length")
    if not np.isfinite(r).all() or not np.isfinite(c).all():
        raise InputError(f"{label}calibration of {analyte}: a standard has a non-finite concentration or response")
    levels = np.unique(c)
    if levels.size < 2:
        raise InputError(f"{label}calibration of {analyte} needs standards at two or more concentrations, "
                         f"got {levels.tolist()}")
    slope, intercept = np.polyfit(c, r, 1)
    if not slope > 0:
        raise InputError(f"{label}calibration of {analyte}: the responses do not increase with concentration "
                         f"(slope {slope:.3g}); check the standards' concentrations and files")
    residuals = r - (intercept + slope * c)
    total = float(((r - r.mean()) ** 2).sum())
    dof = c.size - 2
    sd = float(np.sqrt((residuals ** 2).sum() / dof)) if dof > 0 else float("nan")
    return Calibration(
        analyte=analyte, slope=float(slope), intercept=float(intercept), unit=unit, n_standards=int(c.size),
        n_levels=int(levels.size), r_squared=float(1 - (residuals ** 2).sum() / total) if total > 0 else float("nan"),
        residual_sd=sd, lod=LOD_FACTOR * sd / slope, loq=LOQ_FACTOR * sd / slope)


def calibration_table(calibrations: list[Calibration]) -> pd.DataFrame:
    """One row per calibrated analyte (the fields of :class:`Calibration`)."""
    columns = list(Calibration.__dataclass_fields__)
    return pd.DataFrame([asdict(c) for c in calibrations], columns=columns)


def read_calibrations(table: pd.DataFrame) -> dict[str, Calibration]:
    """``{analyte: Calibration}`` from a table written by :func:`calibration_table`."""
    out = {}
    for rec in table.to_dict("records"):
        rec = {k: rec[k] for k in Calibration.__dataclass_fields__}
        out[rec["analyte"]] = Calibration(**rec)
    return out
