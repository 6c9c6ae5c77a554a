"""PET series in standardised uptake values (SUV), from the DICOM header.

The body-weight SUV of a voxel is its activity concentration (Bq/ml) times the patient's weight (g) over the
injected activity (Bq) decayed to the time the image's activities refer to:

* ``Units`` (0054,1001) ``BQML``: activity concentrations; ``GML``: already SUVbw (left as it is); ``CNTS``:
  Philips counts with a private SUV scale factor (7053,1000) or activity-concentration factor (7053,1009).
* ``DecayCorrection`` (0054,1102) ``START``: activities decay-corrected to the scan start, so the dose is decayed
  from injection to the scan reference time; ``ADMIN``: corrected to the injection, the dose is used as it is;
  ``NONE``: not corrected, the dose is decayed to each slice's acquisition time.
* Scan reference time: the series date/time, unless it lies after the earliest acquisition date/time of the
  series (a series re-saved after post-processing), then that acquisition time. Injection time:
  RadiopharmaceuticalStartDateTime (0018,1078), else the series date with RadiopharmaceuticalStartTime
  (0018,1072), a day earlier when that is after the scan (injection before midnight, scan after).
* Half-life: RadionuclideHalfLife (0018,1075) of the radionuclide used (any nuclide: F-18, Ga-68, Zr-89, ...).

This follows the vendor-neutral computation of the QIBA FDG-PET/CT profile and the SUV manual of the OncoRay
digital reference objects (oncoray.github.io/suv_computation), whose DROs (``tests/data/volumes/
oncoray_suv_dro``: BQML/START, per-slice rescale slopes, GML, ADMIN, midnight, Ga-68) must come out at SUV
0.20 / 1.00 / 4.00 in their mask (``tests/test_pet.py``). Lean-body-mass and body-surface-area SUVs are given
as factors where height and sex are present: SUL after Janmahasatian et al. (Clin Pharmacokinet
2005;44:1051), as PERCIST uses it, and BSA after Du Bois & Du Bois (Arch Intern Med 1916;17:863).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError


@dataclass
class SUVConversion:
    """How a PET series was converted to SUVbw (every value as read or derived; None when not applicable)."""

    units: str
    decay_correction: str
    weight_kg: float
    injected_dose_bq: float | None = None
    half_life_s: float | None = None
    injection_time: str | None = None
    reference_time: str | None = None
    decay_time_s: float | None = None
    decayed_dose_bq: float | None = None
    factor: float | None = None  # SUVbw per stored unit (per-slice factors for DecayCorrection NONE)
    slice_factors: list = field(default_factory=list)
    sul_factor: float | None = None  # SUVlbm / SUVbw
    bsa_factor: float | None = None  # SUVbsa / SUVbw (m² per kg)
    note: str = ""

    def as_rows(self) -> list[dict]:
        """The record as ``metric, value, unit`` rows for the metrics table."""
        units = {"weight_kg": "kg", "injected_dose_bq": "Bq", "half_life_s": "s", "decay_time_s": "s",
                 "decayed_dose_bq": "Bq", "factor": "SUVbw per stored unit", "sul_factor": "1",
                 "bsa_factor": "m2/kg"}
        return [{"metric": f"suv_{k}", "value": v, "unit": units[k]} for k, v in asdict(self).items()
                if k in units and v is not None]


def _datetime(date: str | None, time: str | None) -> datetime | None:
    if not date or not time:
        return None
    time = str(time).strip()
    whole, _, frac = time.partition(".")
    whole = whole.ljust(6, "0")[:6]
    return datetime.strptime(str(date).strip()[:8] + whole, "%Y%m%d%H%M%S") + timedelta(
        microseconds=int((frac + "000000")[:6]) if frac else 0)


def _full_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    value = str(value).strip()
    value = value.split("+")[0].split("-")[0] if len(value) > 8 else value
    date, time = value[:8], value[8:] or "000000"
    return _datetime(date, time)


def lean_body_mass_kg(weight_kg: float, height_m: float, sex: str) -> float | None:
    """Janmahasatian et al. 2005 lean body mass (kg), as PERCIST's SUL uses; None for a sex other than M/F."""
    bmi = weight_kg / height_m ** 2
    if sex == "M":
        return 9270.0 * weight_kg / (6680.0 + 216.0 * bmi)
    if sex == "F":
        return 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)
    return None


def body_surface_area_m2(weight_kg: float, height_m: float) -> float:
    """Du Bois & Du Bois 1916 body surface area (m²)."""
    return 0.007184 * weight_kg ** 0.425 * (100.0 * height_m) ** 0.725


def suv_conversion(headers: list, where: str) -> SUVConversion:
    """The SUVbw conversion of a PET series from the pydicom datasets of its slices (in volume order)."""
    ds = headers[0]
    units = str(ds.get("Units", "")).upper()
    decay = str(ds.get("DecayCorrection", "")).upper()
    weight = ds.get("PatientWeight")
    if units == "GML":
        return SUVConversion(units=units, decay_correction=decay, weight_kg=float(weight or float("nan")),
                             factor=1.0, note="stored as SUVbw (GML): left as it is")
    if not weight or float(weight) <= 0:
        raise InputError(f"{where}: no patient weight (0010,1030) in the header; SUV needs it")
    weight = float(weight)
    if units == "CNTS":
        scale = ds.get((0x7053, 0x1000))
        if scale is not None:
            return SUVConversion(units=units, decay_correction=decay, weight_kg=weight, factor=float(scale.value),
                                 note="Philips SUV scale factor (7053,1000)")
        raise InputError(f"{where}: units CNTS without the Philips SUV scale factor (7053,1000); cannot convert")
    if units != "BQML":
        raise InputError(f"{where}: PET units {units or 'missing'} (0054,1001); SUV needs BQML, GML or Philips CNTS")
    if "RadiopharmaceuticalInformationSequence" not in ds or not ds.RadiopharmaceuticalInformationSequence:
        raise InputError(f"{where}: no RadiopharmaceuticalInformationSequence (0054,0016): dose and half-life "
                         "unknown")
    rp = ds.RadiopharmaceuticalInformationSequence[0]
    dose, half_life = rp.get("RadionuclideTotalDose"), rp.get("RadionuclideHalfLife")
    if not dose or not half_life:
        raise InputError(f"{where}: the radiopharmaceutical information lacks the total dose (0018,1074) or the "
                         "half-life (0018,1075)")
    dose, half_life = float(dose), float(half_life)
    series = _datetime(ds.get("SeriesDate"), ds.get("SeriesTime"))
    acquisitions = [t for t in (_datetime(h.get("AcquisitionDate"), h.get("AcquisitionTime")) for h in headers) if t]
    earliest = min(acquisitions) if acquisitions else None
    reference = series if series and (earliest is None or series <= earliest) else earliest
    if reference is None:
        raise InputError(f"{where}: neither series nor acquisition date and time in the header")
    injection = _full_datetime(rp.get("RadiopharmaceuticalStartDateTime"))
    if injection is None:
        start = rp.get("RadiopharmaceuticalStartTime")
        if not start:
            raise InputError(f"{where}: no injection time (0018,1072 or 0018,1078)")
        injection = _datetime(reference.strftime("%Y%m%d"), start)
        if injection > reference:  # injected before midnight, scanned after
            injection -= timedelta(days=1)
    out = SUVConversion(units=units, decay_correction=decay, weight_kg=weight, injected_dose_bq=dose,
                        half_life_s=half_life, injection_time=injection.isoformat(),
                        reference_time=reference.isoformat())
    grams = 1000.0 * weight
    if decay == "START":
        out.decay_time_s = (reference - injection).total_seconds()
        out.decayed_dose_bq = dose * 2.0 ** (-out.decay_time_s / half_life)
        out.factor = grams / out.decayed_dose_bq
    elif decay == "ADMIN":
        out.decay_time_s, out.decayed_dose_bq, out.factor = 0.0, dose, grams / dose
    elif decay == "NONE":
        if len(acquisitions) != len(headers):
            raise InputError(f"{where}: decay correction NONE needs every slice's acquisition time")
        out.slice_factors = [grams / (dose * 2.0 ** (-(t - injection).total_seconds() / half_life))
                             for t in acquisitions]
        out.note = "not decay-corrected: the dose decayed to each slice's acquisition time"
    else:
        raise InputError(f"{where}: decay correction {decay or 'missing'} (0054,1102); expected START, ADMIN or NONE")
    if out.decay_time_s is not None and out.decay_time_s < 0:
        raise InputError(f"{where}: the injection ({injection}) is after the scan ({reference})")
    height, sex = ds.get("PatientSize"), str(ds.get("PatientSex", "")).upper()
    if height and float(height) > 0:
        lbm = lean_body_mass_kg(weight, float(height), sex)
        out.sul_factor = lbm / weight if lbm else None
        out.bsa_factor = body_surface_area_m2(weight, float(height)) / weight
    return out


def is_pet_series(path: str | os.PathLike, series: str | None = None) -> bool:
    """Whether ``path`` is a DICOM series (a folder or a file) of modality PT."""
    files = _series_files(Path(path), series)
    if not files:
        return False
    import pydicom

    try:
        return str(pydicom.dcmread(files[0], stop_before_pixels=True).get("Modality", "")) == "PT"
    except Exception:  # not DICOM
        return False


def _series_files(path: Path, series: str | None = None) -> list[str]:
    from .volumes import dicom_files

    if path.is_dir():
        try:
            return dicom_files(path, series)
        except InputError:
            return []
    if path.suffix.lower() in (".dcm", ".ima", "") and path.is_file():
        return [str(path)]
    return []


def read_pet_suv(path: str | os.PathLike, series: str | None = None) -> tuple[sitk.Image, SUVConversion]:
    """A PET DICOM series (folder or single file) as a SUVbw volume, with the conversion it went through.

    SimpleITK reads the voxels (each slice's rescale slope and intercept applied) in physical space;
    pydicom reads the headers.
    """
    import pydicom

    from .volumes import dicom_files

    path = Path(path)
    files = dicom_files(path, series) if path.is_dir() else _series_files(path)
    if not files:
        raise InputError(f"{path}: no DICOM series")
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    if str(headers[0].get("Modality", "")) != "PT":
        raise InputError(f"{path}: modality {headers[0].get('Modality')}, not a PET series (PT)")
    conversion = suv_conversion(headers, str(path))
    if len(files) == 1:
        image = sitk.ReadImage(files[0], sitk.sitkFloat64)
    else:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(files)
        reader.SetOutputPixelType(sitk.sitkFloat64)
        image = reader.Execute()
    if conversion.slice_factors:
        factors = np.asarray(conversion.slice_factors, dtype=np.float64)
        values = sitk.GetArrayFromImage(image) * factors[:, None, None]
        out = sitk.GetImageFromArray(values)
        out.CopyInformation(image)
        return out, conversion
    if not math.isfinite(conversion.factor):
        raise InputError(f"{path}: SUV factor {conversion.factor}")
    return sitk.Cast(image * conversion.factor, sitk.sitkFloat64), conversion
