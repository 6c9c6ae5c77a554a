"""The analysis-ready MSI stack: normalised analyte images plus TIC, standard, acquisition mask and peaks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from ..image import SectionImage
from ..settings import MSISettings
from .calibration import Calibration
from .extract import IonTarget, MSIImages
from .normalise import clip_hotspots, normalise


def targets(msi: MSISettings) -> tuple[list[IonTarget], IonTarget | None]:
    """The ions to image (analytes, then the internal standard) and the lock mass, from the settings."""
    out = [IonTarget(a.name, float(a.mz), float(a.ppm)) for a in msi.analytes]
    if msi.internal_standard is not None:
        s = msi.internal_standard
        out.append(IonTarget(s.name, float(s.mz), float(s.ppm)))
    lock = msi.lock_mass
    return out, (IonTarget(lock.name, float(lock.mz), float(lock.ppm)) if lock is not None else None)


def check_internal_standard(res: MSIImages, msi: MSISettings, where: str) -> None:
    """Refuse a configured internal standard that has no signal in any pixel (normalising by it is meaningless)."""
    s = msi.internal_standard
    if s is None:
        return
    if not np.nanmax(np.nan_to_num(res.images[s.name], nan=0.0)) > 0:
        raise InputError(f"{where}: the internal standard {s.name} (m/z {s.mz} ± {s.ppm} ppm) has no signal in any pixel")


def analysis_stack(res: MSIImages, msi: MSISettings,
                   calibrations: dict[str, Calibration] | None = None) -> tuple[SectionImage, pd.DataFrame]:
    """Normalised analyte images and the raw channels as one stack, and per-analyte statistics.

    Channels: one per analyte (normalised, then: through its calibration curve when ``calibrations`` has
    one, giving concentrations in the standards' unit; otherwise × the internal standard's concentration
    for internal-standard normalisation with a concentration, i.e. concentration-equivalents under equal
    response; hotspots clipped when configured), ``TIC``, the internal standard
    (raw counts), ``acquired`` (1 where a spectrum exists), the lock-mass ppm error (when configured) and
    the top-N mean-spectrum peaks (raw counts). Non-acquired pixels are NaN in every signal channel.
    """
    std = msi.internal_standard
    calibrations = calibrations or {}
    channels, planes, rows = [], [], []
    for a in msi.analytes:
        img = normalise(res.images[a.name], msi.normalisation, msi=res, reference=std.name if std else None)
        cal = calibrations.get(a.name)
        if cal is not None:
            img = cal.concentration(img)
        elif msi.normalisation == "internal_standard" and std.concentration:
            img = img * float(std.concentration)
        img = clip_hotspots(img, msi.hotspot_percentile)
        channels.append(a.name)
        planes.append(img)
        finite = img[np.isfinite(img)]
        raw = res.images[a.name][res.acquired]
        rows.append({
            "analyte": a.name, "mz": a.mz, "ppm": a.ppm, "normalisation": msi.normalisation,
            "unit": msi.unit(a, calibrated=cal is not None),
            "calibration": "standards" if cal is not None else "none",
            "n_acquired": int(res.acquired.sum()), "fraction_detected": float((raw > 0).mean()),
            "mean": float(finite.mean()) if finite.size else np.nan,
            "median": float(np.median(finite)) if finite.size else np.nan,
            "p99": float(np.percentile(finite, 99)) if finite.size else np.nan,
            "max": float(finite.max()) if finite.size else np.nan,
        })
    extra = [("TIC", res.tic)] + ([(std.name, res.images[std.name])] if std else [])
    extra += [("acquired", res.acquired.astype(np.float64))]
    extra += [("lock_mass_ppm", res.lock_mass_ppm)] if res.lock_mass_ppm is not None else []
    extra += [(name, res.images[name]) for name in res.top_peaks]
    channels += [name for name, _ in extra]
    planes += [plane for _, plane in extra]
    stack = SectionImage(np.stack(planes).astype(np.float32), channels, res.pixel_size, res.origin)
    return stack, pd.DataFrame(rows)


def mean_spectrum_table(res: MSIImages) -> pd.DataFrame:
    """The binned mean spectrum (bins with signal only): ``mz``, ``mean_intensity``."""
    mz, mean = res.mean_spectrum
    keep = mean > 0
    return pd.DataFrame({"mz": mz[keep], "mean_intensity": mean[keep]})
