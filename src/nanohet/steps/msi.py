"""Steps of ``workflow/rules/msi.smk``: one streaming pass over each imzML file."""

from __future__ import annotations

import logging

import numpy as np

from ..atomic import write_table
from ..errors import InputError
from ..io.imzml import read_imzml_index
from ..io.ometiff import write_ome_tiff
from ..msi.extract import extract_ion_images
from ..msi.stack import analysis_stack, check_internal_standard, mean_spectrum_table, targets
from ..settings import MSISettings

log = logging.getLogger("nanohet")


def extract(imzml: str, msi: dict | MSISettings, out_ions: str, out_stats: str, out_spectrum: str,
            out_index: str | None = None, pixel_size: float | None = None, sample: str = "",
            threads: int = 1) -> None:
    """Ion images of the configured analytes, normalised, as an OME-TIFF stack (see
    :func:`nanohet.msi.stack.analysis_stack`), per-analyte statistics and the mean spectrum. The parsed
    imzML index is cached to ``out_index`` when given."""
    msi = MSISettings.coerce(msi)
    _set_threads(threads)
    try:
        index = read_imzml_index(imzml)
    except InputError as exc:
        raise InputError(f"sample {sample}: {exc}" if sample else str(exc)) from None
    if out_index:
        index.save(out_index)
    ions, lock = targets(msi)
    log.info("%s: %d spectra (%s, m/z %s, intensity %s), pixel %s µm; %d targets; normalisation %s",
             imzml, index.n_spectra, "continuous" if index.continuous else "processed",
             index.mz_dtype, index.int_dtype, index.pixel_size or pixel_size, len(ions), msi.normalisation)

    def progress(done, total):
        log.info("  %d / %d spectra (%.0f %%)", done, total, 100.0 * done / total)

    res = extract_ion_images(index, ions, pixel_size_um=pixel_size, reduce=msi.reduce, lock_mass=lock,
                             top_n=int(msi.top_n_peaks), median=msi.normalisation == "median",
                             mean_spectrum_bin_mz=float(msi.mean_spectrum_bin_mz), chunk_peaks=int(msi.chunk_peaks),
                             progress=progress)
    if lock is not None:
        found = np.isfinite(res.lock_mass_ppm[res.acquired])
        log.info("lock mass %.4f: found in %.1f %% of spectra, median |error| %.2f ppm", lock.mz,
                 100 * found.mean(), np.nanmedian(np.abs(res.lock_mass_ppm)) if found.any() else np.nan)
    check_internal_standard(res, msi, f"{imzml} (sample {sample})")
    stack, stats = analysis_stack(res, msi)
    write_ome_tiff(out_ions, stack)
    write_table(stats, out_stats)
    write_table(mean_spectrum_table(res), out_spectrum)
    log.info("wrote %s with channels %s", out_ions, stack.channels)


def _set_threads(threads: int) -> None:
    try:
        import numba

        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    except ImportError:
        pass
