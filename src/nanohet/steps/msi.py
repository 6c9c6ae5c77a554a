"""Steps of ``workflow/rules/msi.smk``: one streaming pass over each imzML file."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..atomic import write_table
from ..errors import InputError
from ..io.imzml import acquired_mz_range, is_profile, mz_sampling_step, read_imzml_index
from ..io.ometiff import write_ome_tiff
from ..msi.calibration import calibration_table, fit_calibration, read_calibrations, standard_response
from ..msi.extract import extract_ion_images
from ..msi.prepare import read_index_with_kernels
from ..msi.normalise import normalise
from ..msi.stack import analysis_stack, check_internal_standard, mean_spectrum_table, targets
from ..settings import MSISettings
from . import one_input

log = logging.getLogger("nanohet")


def target_checks(index, ions, where: str, sample: str = "") -> pd.DataFrame:
    """Each target ion against the acquisition: an ion outside the acquired m/z range is an error (its image
    would be all zero); in profile data, a window narrower than the m/z sampling step at the ion is flagged
    (the window may fall between samples). Returns the QC rows (``sample, edge`` = ion, ``flagged``,
    ``flag_reason``)."""
    lo, hi = acquired_mz_range(index)
    outside = [t for t in ions if np.isfinite(lo) and (t.mz + t.half_width < lo or t.mz - t.half_width > hi)]
    if outside:
        raise InputError(f"{where}: {', '.join(f'{t.name} (m/z {t.mz:g})' for t in outside)} outside the acquired "
                         f"m/z range {lo:.4f}-{hi:.4f}: the ion image would be all zero; check msi.analytes")
    profile = is_profile(index)
    rows = []
    for t in ions:
        step = mz_sampling_step(index, t.mz) if profile else float("nan")
        narrow = bool(np.isfinite(step) and 2 * t.half_width < step)
        reason = (f"the ±{t.half_width:.4g} m/z window is narrower than the profile's sampling step {step:.4g} "
                  "m/z there: widen msi.analytes ppm" if narrow else "")
        if narrow:
            log.warning("%s: %s: %s", where, t.name, reason)
        rows.append({"sample": sample, "edge": t.name, "flagged": narrow, "flag_reason": reason,
                     "mz": t.mz, "window_mz": 2 * t.half_width, "sampling_step_mz": step})
    return pd.DataFrame(rows)


def extract(imzml: str, msi: dict | MSISettings, out_ions: str, out_stats: str, out_spectrum: str,
            out_index: str | None = None, pixel_size: float | None = None, sample: str = "",
            threads: int = 1, calibration: list[str] | str | None = None, out_qc: str | None = None) -> None:
    """Ion images of the configured analytes, normalised (and calibrated into concentrations where the
    ``calibration`` table of :func:`calibrate` has a curve), as an OME-TIFF stack (see
    :func:`nanohet.msi.stack.analysis_stack`), per-analyte statistics and the mean spectrum. The parsed
    imzML index is cached to ``out_index`` when given."""
    msi = MSISettings.coerce(msi)
    try:  # the compiled kernel is prepared while the index is read
        index = read_index_with_kernels(imzml, lock_mass=msi.lock_mass is not None)
    except InputError as exc:
        raise InputError(f"sample {sample}: {exc}" if sample else str(exc)) from None
    ions, lock = targets(msi)
    qc = target_checks(index, ions, f"{imzml} (sample {sample})", sample)
    log.info("%s: %d spectra (%s, m/z %s, intensity %s), pixel %s µm; %d targets; normalisation %s",
             imzml, index.n_spectra, "continuous" if index.continuous else "processed",
             index.mz_dtype, index.int_dtype, index.pixel_size or pixel_size, len(ions), msi.normalisation)

    def progress(done, total):
        log.info("  %d / %d spectra (%.0f %%)", done, total, 100.0 * done / total)

    res = extract_ion_images(index, ions, pixel_size_um=pixel_size, reduce=msi.reduce, lock_mass=lock,
                             top_n=int(msi.top_n_peaks), median=msi.normalisation == "median",
                             mean_spectrum_bin_mz=float(msi.mean_spectrum_bin_mz), chunk_peaks=int(msi.chunk_peaks),
                             threads=threads, progress=progress)
    if lock is not None:
        found = np.isfinite(res.lock_mass_ppm[res.acquired])
        log.info("lock mass %.4f: found in %.1f %% of spectra, median |error| %.2f ppm", lock.mz,
                 100 * found.mean(), np.nanmedian(np.abs(res.lock_mass_ppm)) if found.any() else np.nan)
    check_internal_standard(res, msi, f"{imzml} (sample {sample})")
    calibration = one_input(calibration)
    calibrations = read_calibrations(pd.read_csv(calibration, sep="\t")) if calibration else {}
    for cal in calibrations.values():
        log.info("%s calibrated from %d standards: concentration = (response - %.4g) / %.4g %s", cal.analyte,
                 cal.n_standards, cal.intercept, cal.slope, cal.unit)
    stack, stats = analysis_stack(res, msi, calibrations)
    write_ome_tiff(out_ions, stack)
    write_table(stats, out_stats)
    write_table(mean_spectrum_table(res), out_spectrum)
    if out_qc:
        write_table(qc, out_qc)
    if out_index:  # cached last: a file that fails anywhere above leaves no index behind
        index.save(out_index)
    log.info("wrote %s with channels %s", out_ions, stack.channels)


def calibrate(standards: list[dict], msi: dict | MSISettings, out_calibration: str, out_standards: str,
              sheet: str = "the sample sheet", threads: int = 1) -> None:
    """Calibration curves of the analytes from standards of known concentration (:mod:`nanohet.msi.calibration`).

    ``standards`` holds the sample sheet's ``msi_standard`` rows (``path``, ``analyte``, ``concentration``,
    optional ``pixel_size``); a file may hold several analytes (one row each). Each file is read in one pass
    and normalised as the samples are; its mean normalised response per analyte goes into
    ``out_standards``, the fitted line of each analyte into ``out_calibration``.
    """
    msi = MSISettings.coerce(msi)
    ions, _ = targets(msi)
    std = msi.internal_standard
    by_name = {a.name: a for a in msi.analytes}
    rows = []
    for path, group in pd.DataFrame(standards).groupby("path", sort=True):
        try:
            index = read_imzml_index(path)
        except InputError as exc:
            raise InputError(f"standard {path} ({sheet}): {exc}") from None
        pixel = group["pixel_size"].dropna().iloc[0] if "pixel_size" in group and group["pixel_size"].notna().any() else None
        res = extract_ion_images(index, ions, pixel_size_um=pixel, reduce=msi.reduce,
                                 median=msi.normalisation == "median", threads=threads)
        check_internal_standard(res, msi, f"standard {path} ({sheet})")
        for rec in group.to_dict("records"):
            image = normalise(res.images[rec["analyte"]], msi.normalisation, msi=res,
                              reference=std.name if std else None)
            image[~res.acquired] = np.nan
            response, n = standard_response(image, f"standard {path} ({sheet}), analyte {rec['analyte']}")
            rows.append({"path": path, "analyte": rec["analyte"], "concentration": float(rec["concentration"]),
                         "response": response, "n_pixels": n})
            log.info("standard %s: %s at %g -> mean response %.5g over %d pixels", path, rec["analyte"],
                     rec["concentration"], response, n)
    table = pd.DataFrame(rows)
    fits = []
    for analyte, sub in table.groupby("analyte", sort=True):
        cal = fit_calibration(analyte, sub["concentration"], sub["response"], msi.unit(by_name[analyte], True),
                              f"{sheet}, msi_standard rows of {analyte}")
        fits.append(cal)
        log.info("%s: response = %.4g + %.4g x concentration (%s), R² %.4f, LOD %.3g, LOQ %.3g from %d standards",
                 analyte, cal.intercept, cal.slope, cal.unit, cal.r_squared, cal.lod, cal.loq, cal.n_standards)
    curves = {c.analyte: c for c in fits}
    table["fitted"] = [curves[a].response(c) for a, c in zip(table["analyte"], table["concentration"])]
    table["back_calculated"] = [curves[a].concentration(r) for a, r in zip(table["analyte"], table["response"])]
    write_table(calibration_table(fits), out_calibration)
    write_table(table, out_standards)
