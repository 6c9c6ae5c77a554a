"""What the demo's instruments record of a simulated section: the MSI acquisition and the in vivo volume."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..io.imzml import ImzMLWriter
from .geometry import msi_to_section
from .phantom import ANALYTE_IONS, C13_SHIFT, MATRIX_IONS, NECROTIC_LIPIDS, VIABLE_LIPIDS, PhantomParams, SectionTruth


def msi_geometry(truth: SectionTruth, params: PhantomParams, rng) -> dict:
    """Draw the MSI acquisition grid and its true transform onto the section."""
    n = truth.tissue.shape[0]
    fov = n * truth.spacing_um
    nm = int(math.ceil(fov / params.msi_pixel_um * 0.95))
    msi_centre = np.array([(nm - 1) * params.msi_pixel_um / 2] * 2)
    wl = rng.uniform(1500.0, 2500.0, 4)
    return {
        "pixel_size_um": params.msi_pixel_um, "grid_shape": [nm, nm],
        "rotation_deg": float(rng.uniform(-params.msi_rotation_deg, params.msi_rotation_deg)),
        "scale": float(1 + rng.uniform(-params.msi_scale_range, params.msi_scale_range)),
        "translation": rng.normal(0, params.msi_translation_um / 2, 2).clip(
            -params.msi_translation_um, params.msi_translation_um).tolist(),
        "msi_centre": msi_centre.tolist(), "section_centre": [fov / 2, fov / 2],
        "deformation_amplitude": float(params.msi_deformation_um),
        "deformation_wavelength": wl.tolist(), "deformation_phase": rng.uniform(0, 2 * np.pi, 4).tolist(),
        **({"mirrored": True} if params.msi_mirrored else {}),
    }


def _species_table():
    """(m/z, kind, index) of every peak family in the synthetic spectra."""
    rows = []
    for name, mz in ANALYTE_IONS.items():
        for iso, frac in ((0, 1.0), (1, 0.30), (2, 0.07)):
            rows.append((mz + iso * C13_SHIFT, name, frac))
    for mz in MATRIX_IONS:
        rows.append((mz, "matrix", 1.0))
    for mz, rel in VIABLE_LIPIDS:
        rows.append((mz, "viable_lipid", rel))
        rows.append((mz + C13_SHIFT, "viable_lipid", rel * 0.45))
    for mz, rel in NECROTIC_LIPIDS:
        rows.append((mz, "necrotic_lipid", rel))
        rows.append((mz + C13_SHIFT, "necrotic_lipid", rel * 0.3))
    return rows


def write_msi(path_imzml: Path, truth: SectionTruth, params: PhantomParams, geom: dict, rng,
              uuid: str, chunk_rows: int = 16) -> np.ndarray:
    """Simulate and write the MSI acquisition; return the acquired-pixel mask.

    Each spectrum holds matrix peaks (everywhere), tissue lipid peaks, the
    drug, metabolite, carrier and internal-standard peaks (with 13C isotopes)
    proportional to the concentration averaged over the pixel footprint (``params.msi_footprint_factor`` times
    the pixel pitch: the ablated spot a little wider than the raster step, which the truth and the analysis do
    not assume) and
    the species' response, multiplied by the species' ion suppression
    (region-dependent matrix effects with a smooth random factor), with Poisson
    counting noise, a per-pixel ppm calibration error and random chemical
    noise peaks.
    """
    p = truth.spacing_um
    pm = params.msi_pixel_um
    size = max(int(math.floor(pm * params.msi_footprint_factor / p + 0.5)), 1)  # 34 µm for 30 µm at 2 µm

    def footprint(a):
        return ndimage.uniform_filter(a.astype(np.float32), size=size)

    n = truth.tissue.shape[0]
    supp_field = ndimage.gaussian_filter(rng.normal(0, 1, (n // 25 + 1, n // 25 + 1)), 2)
    supp_field = ndimage.zoom(supp_field / (supp_field.std() + 1e-9), n / supp_field.shape[0], order=1)[:n, :n]
    fields = {
        "doxorubicin": footprint(truth.drug), "doxorubicinol": footprint(truth.metabolite),
        "peg_carrier": footprint(truth.carrier) * params.drug_load_ug_per_g,
        "viable": footprint(truth.viable), "necrosis": footprint(truth.necrosis),
        "supp_noise": supp_field.astype(np.float32),
    }
    ny, nx = geom["grid_shape"]
    acquired = np.ones((ny, nx), dtype=bool)
    acquired[: ny // 6, nx - nx // 6:] = False  # an unacquired corner, as in real ROI scans
    with _SpectraWriter(path_imzml, params, uuid, rng) as writer:
        for r0 in range(0, ny, chunk_rows):
            gy, gx = np.meshgrid(np.arange(r0, min(ny, r0 + chunk_rows)), np.arange(nx), indexing="ij")
            keep = acquired[gy, gx]
            gy, gx = gy[keep], gx[keep]
            xs = msi_to_section(np.stack([gx * pm, gy * pm], axis=1).astype(np.float64), geom) / p
            f = {k: ndimage.map_coordinates(v, [xs[:, 1], xs[:, 0]], order=1, cval=0.0) for k, v in fields.items()}
            writer.add(np.stack([gx + 1, gy + 1], axis=1), f)
    return acquired


def write_standard(path_imzml: Path, spikes: dict, params: PhantomParams, rng, uuid: str) -> None:
    """Simulate and write the MSI acquisition of one calibration standard.

    The standard is mimetic tissue: a homogenate of control tumour (``standard_viable_fraction`` viable,
    the rest necrotic) spiked with each ion species of ``spikes`` (``{species: µg/g}``, species of
    :data:`~.phantom.ANALYTE_IONS`) and sprayed with the internal standard, imaged as a square of
    ``standard_pixels`` MSI pixels by the instrument model of :func:`write_msi` (same response, matrix
    effects, counting noise, mass error and chemical noise).
    """
    unknown = sorted(set(spikes) - set(ANALYTE_IONS))
    if unknown:
        raise ValueError(f"{path_imzml}: the phantom has no ion species {unknown}; known: {sorted(ANALYTE_IONS)}")
    n = int(params.standard_pixels)
    gy, gx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    m = n * n
    viable = float(params.standard_viable_fraction)
    noise = ndimage.gaussian_filter(rng.normal(0, 1, (n, n)), 1.5)
    f = {"viable": np.full(m, viable), "necrosis": np.full(m, 1 - viable),
         "supp_noise": (noise / (noise.std() + 1e-9)).ravel()}
    for species in ("doxorubicin", "doxorubicinol", "peg_carrier"):
        f[species] = np.full(m, float(spikes.get(species, 0.0)))
    with _SpectraWriter(path_imzml, params, uuid, rng) as writer:
        writer.add(np.stack([gx.ravel() + 1, gy.ravel() + 1], axis=1), f)


class _SpectraWriter:
    """Spectra of the demo instrument into an imzML file, from the fields sampled at the pixel centres."""

    def __init__(self, path_imzml: Path, params: PhantomParams, uuid: str, rng):
        self.params, self.rng = params, rng
        self.species = _species_table()
        # continuous mode: one shared axis = species + a fixed set of chemical-noise positions
        self.noise_axis = np.sort(np.random.default_rng(params.seed + 7).uniform(100.0, 1000.0,
                                                                                 int(params.msi_noise_peaks)))
        self.sp_mz = np.array([s[0] for s in self.species])
        self.mz_axis = np.unique(np.round(np.concatenate([self.sp_mz, self.noise_axis]), 4))
        self.writer = ImzMLWriter(path_imzml, params.msi_pixel_um, params.msi_mode, uuid=uuid, mz_axis=self.mz_axis)

    def __enter__(self):
        self.writer.__enter__()
        return self

    def __exit__(self, *exc):
        return self.writer.__exit__(*exc)

    def add(self, coords: np.ndarray, f: dict) -> None:
        counts = self.rng.poisson(_expected_counts(f, self.species, self.params)).astype(np.float32)
        if self.params.msi_mode == "continuous":
            self.writer.add_spectra(coords, _continuous_spectra(counts, self.sp_mz, self.mz_axis, self.noise_axis,
                                                                self.rng))
        else:
            self.writer.add_spectra(coords, *_processed_spectra(counts, self.sp_mz, self.params, self.rng))


def _suppression(f: dict, coefficients) -> np.ndarray:
    """Fraction of ions left after matrix suppression: 1 - a viable - b necrosis, with a smooth random factor."""
    a, b = coefficients
    return (1 - a * f["viable"] - b * f["necrosis"]) * (1 + 0.08 * f["supp_noise"])


def _expected_counts(f: dict, species: list, params: PhantomParams) -> np.ndarray:
    """Expected counts (pixels x species) from the fields sampled at the pixel centres (``f``).

    Analytes give ``msi_counts_per_ug_per_g`` x their response (``msi_response``, relative to the internal
    standard) x concentration x their own matrix suppression (``msi_suppression``).
    """
    tissue = np.clip(f["viable"] + f["necrosis"], 0, 1)
    suppression = params.msi_suppression
    supp = _suppression(f, suppression["default"])
    gain = params.msi_counts_per_ug_per_g
    expected = np.zeros((tissue.size, len(species)))
    rel_abundance = np.array([s[2] for s in species])  # float64: each product below is taken in float64
    for j, (_, kind, _) in enumerate(species):
        if kind == "matrix":
            base = 400.0 * (1 - 0.5 * tissue)
        elif kind == "viable_lipid":
            base = 2000.0 * (f["viable"] + 0.4 * f["necrosis"]) * supp
        elif kind == "necrotic_lipid":
            base = 2000.0 * f["necrosis"] * supp
        else:
            own = _suppression(f, suppression[kind]) if kind in suppression else supp
            conc = params.internal_standard_ug_per_g if kind == "daunorubicin_is" else f[kind]
            base = gain * float(params.msi_response.get(kind, 1.0)) * conc * own
        expected[:, j] = base * rel_abundance[j]
    return expected


def _continuous_spectra(counts, sp_mz, mz_axis, noise_axis, rng) -> np.ndarray:
    """Profile-like spectra on the shared axis: species counts plus chemical noise at fixed positions."""
    m = counts.shape[0]
    order = np.argsort(sp_mz)
    # merge species sharing a rounded axis position
    pos = np.searchsorted(mz_axis, np.round(sp_mz[order], 4))
    mat = np.zeros((m, mz_axis.size), dtype=np.float32)
    np.add.at(mat, (slice(None), pos), counts[:, order])
    npos = np.searchsorted(mz_axis, np.round(noise_axis, 4))
    present = rng.random((m, noise_axis.size)) < 0.5
    mat[:, npos] += np.where(present, rng.geometric(0.2, (m, noise_axis.size)), 0).astype(np.float32)
    return mat


def _processed_spectra(counts, sp_mz, params: PhantomParams, rng):
    """Centroid spectra: detected species with a per-pixel and per-peak ppm error, plus random noise peaks.
    Returns flat intensities, flat m/z and the peaks per spectrum (sorted by m/z within each)."""
    m = counts.shape[0]
    ppm = rng.normal(0, params.msi_ppm_sigma, m)[:, None] + rng.normal(0, 0.5, counts.shape)
    mzs = sp_mz[None, :] * (1 + ppm * 1e-6)
    n_noise = rng.poisson(params.msi_noise_peaks, m)
    noise_pix = np.repeat(np.arange(m), n_noise)
    noise_mz = rng.uniform(100.0, 1000.0, noise_pix.size)
    noise_int = rng.geometric(0.2, noise_pix.size).astype(np.float32)
    present = counts > 0
    pix = np.concatenate([np.nonzero(present)[0], noise_pix])
    all_mz = np.concatenate([mzs[present], noise_mz])
    all_int = np.concatenate([counts[present], noise_int])
    order = np.lexsort((all_mz, pix))
    return all_int[order], all_mz[order], np.bincount(pix, minlength=m)


def simulate_volume(truth: SectionTruth, params: PhantomParams, rng):
    """PET-like uptake volume (%ID/g) of the tumour with its mask.

    The tumour is an irregular ellipsoid sized like the section, with a
    necrotic core; uptake scales with the animal's dose factor (interpatient
    variability), is enhanced at the rim, blurred by a 0.9 mm FWHM PSF and
    carries 5 % Gaussian noise.

    Returns
    -------
    uptake : sitk.Image (float32, mm)
    mask : sitk.Image (uint8, mm)
    true_mean : float
        Mean noise-free, unblurred uptake inside the mask.
    """
    v = params.volume_voxel_mm
    radius_mm = truth.params["tumour_radius_um"] / 1000.0
    n = int(math.ceil(2.8 * radius_mm / v))
    zz, yy, xx = (np.mgrid[0:n, 0:n, 0:n] - (n - 1) / 2.0) * v
    radii = radius_mm * np.array([1.0, 0.9, 0.75])
    r = np.sqrt((xx / radii[0]) ** 2 + (yy / radii[1]) ** 2 + (zz / radii[2]) ** 2)
    theta = np.arctan2(yy, xx)
    surface = 1 + 0.07 * np.cos(3 * theta + rng.uniform(0, 6.3)) + 0.04 * np.cos(5 * theta + rng.uniform(0, 6.3))
    mask = r < surface
    core = r < 0.38 * surface
    dose = truth.params["dose_factor"]
    uptake = np.where(mask, dose * (3.0 + 2.5 * np.clip(r / surface, 0, 1) ** 2), 0.4)
    uptake = np.where(core, 0.6 * dose, uptake)
    true_mean = float(uptake[mask].mean())
    blurred = ndimage.gaussian_filter(uptake, (0.9 / 2.355) / v)
    noisy = blurred * (1 + 0.05 * rng.normal(size=blurred.shape))
    origin = (-12.5, 4.0, -30.0)
    img = sitk.GetImageFromArray(noisy.astype(np.float32))
    msk = sitk.GetImageFromArray(mask.astype(np.uint8))
    for im in (img, msk):
        im.SetSpacing((v, v, v))
        im.SetOrigin(origin)
    return img, msk, true_mean
