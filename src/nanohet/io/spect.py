"""SPECT (or any counting gamma-camera volume) in activity concentration, from a calibration factor.

A reconstructed SPECT volume holds counts. The camera's calibration factor S (counts per second per MBq, measured
on a phantom of known activity with the same radionuclide, collimator and reconstruction) turns a voxel's counts
N collected over the acquisition duration T into the activity it held at the start of the acquisition:

    A0 = N / (S T) x lambda T / (1 - exp(-lambda T)),     lambda = ln 2 / half-life,

the second factor correcting for decay during the acquisition (1 when the radionuclide is not given, or when T
is short against its half-life). Divided by the voxel volume this is the activity concentration (kBq/ml). With
the injected activity D and the time t from injection to the start of the scan, the injected dose decayed to the
scan is ``D exp(-lambda t)``, and

    %ID/g = 100 C / (D exp(-lambda t))       (tissue density 1 g/ml),
    SUVbw = C W / (D exp(-lambda t))         (W the body weight in g).

Source: Dewaraja et al., MIRD pamphlet no. 23: quantitative SPECT for patient-specific 3-dimensional dosimetry
(J Nucl Med 2012;53:1310), sections on calibration and decay during acquisition; Bailey & Willowson, An
evidence-based review of quantitative SPECT imaging and potential clinical applications (J Nucl Med
2013;54:83). Half-lives: NNDC NuDat 3 (Brookhaven National Laboratory).

The sample sheet's ``volume`` row carries the values (:data:`SHEET_COLUMNS`); the conversion is recorded in the
metrics table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

# half-lives in seconds (NNDC NuDat 3), under the names users write
HALF_LIFE_S = {
    "Tc-99m": 6.0067 * 3600, "In-111": 2.8047 * 86400, "I-123": 13.2232 * 3600, "I-125": 59.388 * 86400,
    "I-131": 8.0252 * 86400, "Lu-177": 6.6443 * 86400, "Ga-67": 3.2617 * 86400, "Tl-201": 3.0421 * 86400,
    "Re-188": 17.005 * 3600, "Y-90": 64.05 * 3600, "Zr-89": 78.41 * 3600, "Cu-64": 12.701 * 3600,
    "F-18": 109.77 * 60, "Ga-68": 67.71 * 60, "C-11": 20.364 * 60,
}

# sample-sheet columns of a volume row that make it a counting volume to convert
SHEET_COLUMNS = ("calibration_cps_per_mbq", "acquisition_s", "radionuclide", "injected_mbq", "injection_to_scan_h",
                 "weight_g")


def half_life_s(radionuclide: str, where: str = "") -> float:
    """The half-life (s) of a radionuclide named like ``In-111`` (case and the hyphen do not matter)."""
    key = {k.lower().replace("-", ""): k for k in HALF_LIFE_S}.get(str(radionuclide).lower().replace("-", ""))
    if key is None:
        raise InputError(f"{where}unknown radionuclide {radionuclide!r}; known: {', '.join(HALF_LIFE_S)}")
    return HALF_LIFE_S[key]


def decay_during_acquisition(half_life: float | None, acquisition_s: float) -> float:
    """``lambda T / (1 - exp(-lambda T))``: counts collected over T, as activity at the start of T (>= 1)."""
    if half_life is None:
        return 1.0
    x = math.log(2.0) / half_life * acquisition_s
    return x / -math.expm1(-x) if x > 0 else 1.0


@dataclass(frozen=True)
class CountCalibration:
    """What turns a counting volume into activity: from the sample sheet's volume row.

    Attributes
    ----------
    cps_per_mbq : float
        The camera's calibration factor S (counts per second per MBq).
    acquisition_s : float
        Duration T over which the counts were collected (s).
    radionuclide : str or None
        Its name (for the half-life); without it no decay correction is made.
    injected_mbq : float or None
        Injected activity D (MBq) at the injection; with it, %ID/g and %ID are reported.
    injection_to_scan_h : float or None
        Time t from the injection to the start of the acquisition (h); needed with ``injected_mbq``.
    weight_g : float or None
        Body weight (g); with it, SUVbw is reported too.
    """

    cps_per_mbq: float
    acquisition_s: float
    radionuclide: str | None = None
    injected_mbq: float | None = None
    injection_to_scan_h: float | None = None
    weight_g: float | None = None

    @classmethod
    def from_row(cls, row: dict | None, where: str = "") -> CountCalibration | None:
        """From a sample-sheet row's :data:`SHEET_COLUMNS` (None when the row has no calibration factor); every
        inconsistency is an :class:`~nanohet.errors.InputError` naming ``where`` and the column."""
        row = {k: v for k, v in (row or {}).items() if k in SHEET_COLUMNS and v is not None and v == v}
        if not row:
            return None
        prefix = f"{where}: " if where else ""
        if "calibration_cps_per_mbq" not in row:
            raise InputError(f"{prefix}{', '.join(sorted(row))} given without calibration_cps_per_mbq (the "
                             f"camera's counts per second per MBq, which makes the volume's counts an activity)")
        numbers = {}
        for k in ("calibration_cps_per_mbq", "acquisition_s", "injected_mbq", "injection_to_scan_h", "weight_g"):
            if k in row:
                try:
                    numbers[k] = float(row[k])
                except (TypeError, ValueError):
                    raise InputError(f"{prefix}{k} must be a number, got {row[k]!r}") from None
                if not math.isfinite(numbers[k]) or numbers[k] < 0 or (numbers[k] == 0 and k != "injection_to_scan_h"):
                    raise InputError(f"{prefix}{k} must be a positive number, got {row[k]!r}")
        if "acquisition_s" not in numbers:
            raise InputError(f"{prefix}calibration_cps_per_mbq needs acquisition_s, the duration (s) over which the "
                             f"volume's counts were collected")
        nuclide = row.get("radionuclide")
        if nuclide is not None:
            half_life_s(nuclide, prefix)
        if "injected_mbq" in numbers and "injection_to_scan_h" not in numbers:
            raise InputError(f"{prefix}injected_mbq needs injection_to_scan_h, the time (h) from the injection to "
                             f"the start of the scan, to decay the dose (0 if measured at the scan)")
        if "injection_to_scan_h" in numbers and numbers["injection_to_scan_h"] > 0 and nuclide is None:
            raise InputError(f"{prefix}injection_to_scan_h needs the radionuclide (its half-life decays the dose)")
        if "weight_g" in numbers and "injected_mbq" not in numbers:
            raise InputError(f"{prefix}weight_g is used for SUVbw, which needs injected_mbq")
        return cls(numbers["calibration_cps_per_mbq"], numbers["acquisition_s"], nuclide, numbers.get("injected_mbq"),
                   numbers.get("injection_to_scan_h"), numbers.get("weight_g"))

    @property
    def half_life_s(self) -> float | None:
        return half_life_s(self.radionuclide) if self.radionuclide else None

    @property
    def decayed_dose_mbq(self) -> float | None:
        """The injected activity decayed to the start of the scan (MBq), or None without a dose."""
        if self.injected_mbq is None:
            return None
        t = (self.injection_to_scan_h or 0.0) * 3600.0
        return self.injected_mbq * (math.exp(-math.log(2.0) / self.half_life_s * t) if t > 0 else 1.0)

    def kbq_per_ml(self, counts: np.ndarray, voxel_ml: float) -> np.ndarray:
        """Activity concentration (kBq/ml) at the start of the acquisition of a volume of counts per voxel."""
        factor = decay_during_acquisition(self.half_life_s, self.acquisition_s)
        mbq = np.asarray(counts, dtype=np.float64) / (self.cps_per_mbq * self.acquisition_s) * factor
        return mbq * 1000.0 / voxel_ml

    def as_rows(self) -> list[dict]:
        """The conversion as ``metric, value, unit`` rows for the metrics table."""
        values = {"spect_cps_per_mbq": (self.cps_per_mbq, "cps/MBq"), "spect_acquisition_s": (self.acquisition_s, "s"),
                  "spect_half_life_s": (self.half_life_s, "s"),
                  "spect_decay_during_acquisition": (decay_during_acquisition(self.half_life_s, self.acquisition_s),
                                                     "1"),
                  "spect_injected_mbq": (self.injected_mbq, "MBq"),
                  "spect_injection_to_scan_h": (self.injection_to_scan_h, "h"),
                  "spect_decayed_dose_mbq": (self.decayed_dose_mbq, "MBq"), "spect_weight_g": (self.weight_g, "g")}
        return [{"metric": k, "value": v, "unit": u} for k, (v, u) in values.items() if v is not None]
