"""Synthetic multimodal tumour cohort with ground truth (the demo data).

One call of :func:`generate_sample` simulates a tumour section and writes
what a lab would acquire from it: a 4-channel fluorescence OME-TIFF, an
H&E-like RGB OME-TIFF of an adjacent section, an MSI imzML/.ibd pair on a
rotated, scaled and non-linearly deformed grid, and an in vivo PET-like NIfTI
volume with its tumour mask. The ground truth (true maps, masks, transforms,
landmarks, parameters and metrics) is written to a separate folder that the
analysis never reads.

Model and parameter sources (see ``shared/reference/domain.md``):

* vessel density 100-250 /mm² in viable tumour, higher at the rim; radii
  4-10 µm (tumour vessels 13.5 ± 0.7 µm diameter, 242 ± 16 /mm²,
  PMC3532115);
* nanoparticle extravasation proportional to a per-vessel permeability drawn
  from a lognormal distribution, decaying with distance from the vessel with
  a half-distance of 20-40 µm (doxorubicin L50 24-43 µm, BMC Cancer
  2012;12:214);
* drug released from the carrier diffuses further (Manzoor et al. 2012);
  doxorubicin [M+H]+ 544.1813, doxorubicinol [M+H]+ 546.1970 (monoisotopic,
  computed from C27H29NO11 / C27H31NO11), daunorubicin [M+H]+ 528.1864 as the
  sprayed internal standard (Giordano et al., Sci Rep 2016);
* MSI pixel 20-50 µm, fluorescence 1-2 µm/px, volumes 0.1-0.5 mm voxels.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage, signal

from .atomic import write_table, write_text_atomic
from .image import SectionImage, block_origin, block_reduce_mean
from .imzml import ImzMLWriter, deterministic_uuid
from .ometiff import write_ome_tiff
from .volume import write_volume

# Ion species of the synthetic spectra: (name, m/z, kind). Masses are [M+H]+
# unless stated; lipid and matrix values are standard DHB/positive-mode ions.
ANALYTE_IONS = {
    "doxorubicin": 544.1813,     # C27H29NO11 [M+H]+
    "doxorubicinol": 546.1970,   # C27H31NO11 [M+H]+
    "peg_carrier": 459.2800,     # H(C2H4O)10OH [M+H]+, carrier (PEG) marker
    "daunorubicin_is": 528.1864,  # C27H29NO10 [M+H]+, internal standard
}
MATRIX_IONS = [137.0233, 155.0339, 177.0158, 273.0394]  # DHB-related ions
VIABLE_LIPIDS = [(734.5694, 1.0), (760.5851, 1.5), (798.5410, 0.8), (786.6007, 0.6),
                 (703.5748, 0.4), (810.6007, 0.3)]  # PC 32:0, PC 34:1, [PC 34:1+K]+, PC 36:2, SM 34:1, PC 38:4
NECROTIC_LIPIDS = [(496.3398, 1.0), (524.3711, 0.5), (520.5088, 0.3)]  # LPC 16:0, LPC 18:0, Cer
C13_SHIFT = 1.003355

FLUORESCENCE_CHANNELS = ["DAPI", "CD31", "NP", "F4/80"]


@dataclass
class PhantomParams:
    """Parameters of one simulated tumour (units in the names)."""

    seed: int = 0
    tumour_diameter_mm: float = 3.5
    margin_mm: float = 0.4
    microscopy_pixel_um: float = 2.0
    truth_pixel_um: float = 10.0
    msi_pixel_um: float = 30.0
    msi_mode: str = "processed"
    volume_voxel_mm: float = 0.2
    vessel_density_per_mm2: float = 170.0
    vessel_radius_um: tuple[float, float] = (4.0, 10.0)
    permeability_log_sigma: float = 0.8
    np_half_distance_um: tuple[float, float] = (20.0, 40.0)
    macrophage_patches: int = 4
    macrophage_uptake: float = 3.0
    release_fraction: float = 0.3
    drug_diffusion_um: float = 40.0
    group_uptake: float = 1.0
    interpatient_log_sigma: float = 0.35
    drug_load_ug_per_g: float = 4.0
    internal_standard_ug_per_g: float = 2.0
    msi_rotation_deg: float = 10.0
    msi_scale_range: float = 0.03
    msi_translation_um: float = 120.0
    msi_deformation_um: float = 8.0
    he_translation_um: float = 60.0
    he_rotation_deg: float = 2.0
    he_mirrored: bool = False
    msi_noise_peaks: float = 40.0
    msi_ppm_sigma: float = 1.5
    msi_counts_per_ug_per_g: float = 60.0


@dataclass
class SectionTruth:
    """Ground-truth fields on the fluorescence grid and the acquisition geometry."""

    spacing_um: float
    tissue: np.ndarray
    necrosis: np.ndarray
    vessels: np.ndarray
    macrophages: np.ndarray
    nanoparticle: np.ndarray
    drug: np.ndarray
    metabolite: np.ndarray
    carrier: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def viable(self) -> np.ndarray:
        return self.tissue & ~self.necrosis


# ----------------------------------------------------------------------------- geometry

def _irregular_radius(theta: np.ndarray, radius: float, rng, amplitude: float) -> np.ndarray:
    r = np.ones_like(theta)
    for k in range(2, 8):
        r += rng.normal(0.0, amplitude / k ** 0.8) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return radius * r


def msi_to_section(u: np.ndarray, geom: dict) -> np.ndarray:
    """Map MSI physical coordinates to section coordinates (the true transform).

    Parameters
    ----------
    u : ndarray, shape (N, 2)
        Points ``(x, y)`` in the MSI frame, µm (pixel (1, 1) at the origin).
    geom : dict
        The ``msi_geometry`` entry of the ground truth.

    Returns
    -------
    ndarray, shape (N, 2)
        The same points in section (fluorescence) coordinates, µm.
    """
    u = np.atleast_2d(np.asarray(u, dtype=np.float64))
    th = math.radians(geom["rotation_deg"])
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    x = (u - geom["msi_centre"]) @ rot.T * geom["scale"] + geom["section_centre"] + geom["translation"]
    a, wl, ph = geom["deformation_amplitude"], geom["deformation_wavelength"], geom["deformation_phase"]
    dx = a * np.sin(2 * np.pi * x[:, 1] / wl[0] + ph[0]) * np.cos(2 * np.pi * x[:, 0] / wl[1] + ph[1])
    dy = a * np.cos(2 * np.pi * x[:, 0] / wl[2] + ph[2]) * np.sin(2 * np.pi * x[:, 1] / wl[3] + ph[3])
    return x + np.stack([dx, dy], axis=1)


def he_to_section(p: np.ndarray, geom: dict) -> np.ndarray:
    """Map H&E image coordinates (µm) to section coordinates (a rigid offset, optionally mirrored)."""
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    th = math.radians(geom["rotation_deg"])
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    c = np.asarray(geom["centre"])
    q = p - c
    if geom.get("mirrored"):
        q = q * np.array([-1.0, 1.0])  # the section was mounted face down
    return q @ rot.T + c + np.asarray(geom["translation"])


def msi_pixels_in_tissue(geom: dict, truth_masks: SectionImage) -> tuple[np.ndarray, np.ndarray]:
    """Every MSI pixel centre whose true section position lies in the true tissue, for dense TRE.

    Returns
    -------
    section_points, msi_points : ndarray, shape (N, 2)
        The same points in the section frame and in the MSI frame, µm.
    """
    tissue = truth_masks.channel("tissue") > 0
    ny, nx = geom["grid_shape"]
    ys, xs = np.mgrid[0:ny, 0:nx]
    u = np.stack([xs.ravel(), ys.ravel()], axis=1) * float(geom["pixel_size_um"])
    x = msi_to_section(u, geom)
    ij = np.round((x - np.asarray(truth_masks.origin)) / np.asarray(truth_masks.spacing)).astype(int)
    ok = (ij >= 0).all(1) & (ij[:, 0] < tissue.shape[1]) & (ij[:, 1] < tissue.shape[0])
    ok[ok] = tissue[ij[ok, 1], ij[ok, 0]]
    return x[ok], u[ok]


def section_points_in_tissue(truth_masks: SectionImage, step: int = 4) -> np.ndarray:
    """Every ``step``-th microscopy pixel centre (both axes) inside the true tissue, section frame µm, (N, 2)."""
    ys, xs = np.nonzero(truth_masks.channel("tissue")[::step, ::step] > 0)
    return np.stack([xs, ys], axis=1) * step * np.asarray(truth_masks.spacing) + np.asarray(truth_masks.origin)


def section_to_he(x: np.ndarray, geom: dict) -> np.ndarray:
    """Inverse of :func:`he_to_section`: section coordinates (µm) to H&E image coordinates."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    th = math.radians(geom["rotation_deg"])
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    c = np.asarray(geom["centre"])
    q = (x - c - np.asarray(geom["translation"])) @ rot
    if geom.get("mirrored"):
        q = q * np.array([-1.0, 1.0])
    return q + c


# ----------------------------------------------------------------------------- simulation

def simulate_section(params: PhantomParams) -> SectionTruth:
    """Simulate the tissue fields of one tumour section.

    Parameters
    ----------
    params : PhantomParams

    Returns
    -------
    SectionTruth
        Boolean masks and concentration fields (drug in µg/g) on a square
        grid of ``params.microscopy_pixel_um`` spacing; pixel [0, 0] is
        centred at (0, 0) µm.
    """
    rng = np.random.default_rng(params.seed)
    p = params.microscopy_pixel_um
    radius = 500.0 * params.tumour_diameter_mm * rng.uniform(0.9, 1.1)
    fov = 2 * radius * 1.25 + 2000.0 * params.margin_mm
    n = int(math.ceil(fov / p))
    centre = np.array([n * p / 2, n * p / 2]) + rng.normal(0, 0.03 * radius, 2)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) * np.float32(p)
    dx, dy = xx - centre[0], yy - centre[1]
    r = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx)
    boundary = _irregular_radius(theta, radius, rng, 0.08)
    tissue = r < boundary
    rel = np.clip(r / boundary, 0, 1)

    nc = centre + rng.normal(0, 0.08 * radius, 2)
    rn = np.hypot(xx - nc[0], yy - nc[1])
    tn = np.arctan2(yy - nc[1], xx - nc[0])
    necrosis = tissue & (rn < _irregular_radius(tn, radius * rng.uniform(0.3, 0.42), rng, 0.15))
    viable = tissue & ~necrosis
    del yy, xx, dx, dy, r, theta, rn, tn

    # Vessels: Poisson count, placed preferentially at the rim.
    area_mm2 = viable.sum() * (p / 1000.0) ** 2
    n_vessels = rng.poisson(params.vessel_density_per_mm2 * area_mm2)
    idx = np.flatnonzero(viable)
    w = 0.25 + rel.ravel()[idx] ** 2
    centres = rng.choice(idx, size=n_vessels, replace=False, p=w / w.sum())
    radii = rng.uniform(*params.vessel_radius_um, size=n_vessels)
    perm = rng.lognormal(0.0, params.permeability_log_sigma, size=n_vessels)
    vessels = np.zeros((n, n), dtype=bool)
    source = np.zeros((n, n), dtype=np.float32)
    cy, cx = np.divmod(centres, n)
    for y0, x0, rad, pv in zip(cy, cx, radii, perm):
        rp = rad / p
        h = int(math.ceil(rp))
        ys, xs = slice(max(y0 - h, 0), min(y0 + h + 1, n)), slice(max(x0 - h, 0), min(x0 + h + 1, n))
        gy, gx = np.ogrid[ys, xs]
        disc = (gy - y0) ** 2 + (gx - x0) ** 2 <= rp * rp
        vessels[ys, xs] |= disc
        source[ys, xs] += (disc * pv).astype(np.float32)

    # Nanoparticle extravasation: exponential kernel with the animal's half-distance.
    half_distance = rng.uniform(*params.np_half_distance_um)
    lam = half_distance / math.log(2.0) / p
    h = int(math.ceil(6 * lam))
    ky, kx = np.mgrid[-h:h + 1, -h:h + 1]
    kernel = np.exp(-np.hypot(ky, kx) / lam).astype(np.float32)
    np_free = signal.fftconvolve(source, kernel, mode="same").clip(min=0) * tissue

    macrophages = np.zeros((n, n), dtype=np.float32)
    ys_v, xs_v = np.nonzero(viable & (rel > 0.6))
    for _ in range(params.macrophage_patches):
        k = rng.integers(len(ys_v))
        sigma = rng.uniform(60, 120) / p
        patch = np.zeros((n, n), dtype=np.float32)
        patch[ys_v[k], xs_v[k]] = 1.0
        macrophages += ndimage.gaussian_filter(patch, sigma, truncate=3.0) * (2 * np.pi * sigma ** 2)
    macrophages = np.clip(macrophages, 0, 1) * viable

    dose = params.group_uptake * rng.lognormal(0.0, params.interpatient_log_sigma)
    scale = dose / max(float(np_free[viable].mean()), 1e-12)
    np_free *= scale
    nanoparticle = np_free * (1 + params.macrophage_uptake * macrophages)
    load = params.drug_load_ug_per_g
    released = ndimage.gaussian_filter(load * params.release_fraction * np_free,
                                       params.drug_diffusion_um / p, truncate=3.0)
    drug_free = released * tissue * np.where(necrosis, 0.5, 1.0)
    drug = load * (1 - params.release_fraction) * nanoparticle + drug_free
    metabolite = 0.15 * ndimage.gaussian_filter(drug_free, 5.0 / p) * viable

    meta = {
        "n_vessels": int(n_vessels), "np_half_distance_um": half_distance, "dose_factor": dose,
        "tumour_radius_um": radius, "tumour_centre_um": centre.tolist(),
        "viable_area_mm2": float(area_mm2),
        "vessel_density_per_mm2": float(n_vessels / max(area_mm2, 1e-9)),
    }
    return SectionTruth(
        spacing_um=p, tissue=tissue, necrosis=necrosis, vessels=vessels,
        macrophages=macrophages.astype(np.float32), nanoparticle=nanoparticle.astype(np.float32),
        drug=drug.astype(np.float32), metabolite=metabolite.astype(np.float32),
        carrier=nanoparticle.astype(np.float32), params=meta,
    )


# ----------------------------------------------------------------------------- rendering

def _point_process(rng, density_per_mm2: np.ndarray, p: float) -> np.ndarray:
    prob = np.clip(density_per_mm2 * (p / 1000.0) ** 2, 0, 1)
    return (rng.random(prob.shape, dtype=np.float32) < prob).astype(np.float32)


def render_fluorescence(truth: SectionTruth, rng) -> SectionImage:
    """Render the 4-channel fluorescence image (DAPI, CD31, NP, F4/80), uint16.

    Nuclei and macrophages are point processes blurred by a cell-sized
    kernel; all channels get tissue autofluorescence, background, an optical
    blur of 1 µm and Poisson (shot) noise.
    """
    p = truth.spacing_um
    viable, necrosis, tissue = truth.viable, truth.necrosis, truth.tissue
    nuclei = _point_process(rng, np.where(viable, 4000.0, np.where(necrosis, 400.0, 0.0)), p)
    nuclei = ndimage.gaussian_filter(nuclei, 2.5 / p) * (2 * np.pi * (2.5 / p) ** 2)
    macro_cells = _point_process(rng, 1500.0 * truth.macrophages, p)
    macro_cells = ndimage.gaussian_filter(macro_cells, 4.0 / p) * (2 * np.pi * (4.0 / p) ** 2)
    np_norm = truth.nanoparticle / max(float(np.percentile(truth.nanoparticle[viable], 99)), 1e-9)
    autof = np.where(viable, 120.0, 0.0) + np.where(necrosis, 200.0, 0.0)
    channels = [
        100 + autof + 2500.0 * nuclei,
        100 + 0.5 * autof + 2500.0 * truth.vessels,
        100 + 0.5 * autof + 1500.0 * np_norm,
        100 + 0.5 * autof + 2000.0 * macro_cells,
    ]
    out = np.empty((4,) + truth.tissue.shape, dtype=np.uint16)
    for c, ch in enumerate(channels):
        blurred = ndimage.gaussian_filter(ch.astype(np.float32), 1.0 / p)
        out[c] = np.clip(rng.poisson(np.clip(blurred, 0, None)), 0, 65535)
    return SectionImage(out, list(FLUORESCENCE_CHANNELS), (p, p), (0.0, 0.0))


def render_he(truth: SectionTruth, geom: dict, rng) -> SectionImage:
    """Render an H&E-like RGB image of an adjacent section with a rigid offset.

    Colours follow the Beer-Lambert stain model with the haematoxylin and
    eosin optical-density vectors of Ruifrok & Johnston (Anal Quant Cytol
    Histol 2001;23:291); necrosis stains paler with eosin.
    """
    p = truth.spacing_um
    n = truth.tissue.shape[0]
    nuclei = _point_process(rng, np.where(truth.viable, 4000.0, np.where(truth.necrosis, 900.0, 0.0)), p)
    nuclei = ndimage.gaussian_filter(nuclei, 2.5 / p) * (2 * np.pi * (2.5 / p) ** 2)
    hema = 0.08 * truth.tissue + 0.9 * np.clip(nuclei, 0, 1.5)
    eosin = 0.55 * truth.viable + 0.25 * truth.necrosis
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64) * p
    pts = he_to_section(np.stack([xx.ravel(), yy.ravel()], axis=1), geom) / p
    coords = [pts[:, 1].reshape(n, n), pts[:, 0].reshape(n, n)]
    hema = ndimage.map_coordinates(hema.astype(np.float32), coords, order=1, cval=0.0)
    eosin = ndimage.map_coordinates(eosin.astype(np.float32), coords, order=1, cval=0.0)
    od_h = np.array([0.650, 0.704, 0.286])
    od_e = np.array([0.072, 0.990, 0.105])
    rgb = np.empty((3, n, n), dtype=np.uint8)
    for c in range(3):
        val = 245.0 * np.exp(-(hema * od_h[c] + eosin * od_e[c]) * 1.6) + rng.normal(0, 3.0, (n, n))
        rgb[c] = np.clip(val, 0, 255).astype(np.uint8)
    return SectionImage(rgb, ["R", "G", "B"], (p, p), (0.0, 0.0))


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
    proportional to the concentration averaged over the pixel footprint,
    multiplied by a spatially varying ion-suppression factor, with Poisson
    counting noise, a per-pixel ppm calibration error and random chemical
    noise peaks.
    """
    p = truth.spacing_um
    pm = params.msi_pixel_um
    size = max(int(round(pm / p)), 1)

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
    species = _species_table()
    sp_mz = np.array([s[0] for s in species])
    sp_kind = [s[1] for s in species]
    sp_rel = np.array([s[2] for s in species])
    gain = params.msi_counts_per_ug_per_g
    # continuous mode: one shared axis = species + a fixed set of chemical-noise positions
    noise_axis = np.sort(np.random.default_rng(params.seed + 7).uniform(100.0, 1000.0, int(params.msi_noise_peaks)))
    mz_axis = np.unique(np.round(np.concatenate([sp_mz, noise_axis]), 4))
    writer = ImzMLWriter(path_imzml, pm, params.msi_mode, uuid=uuid, mz_axis=mz_axis)
    with writer:
        for r0 in range(0, ny, chunk_rows):
            rows = np.arange(r0, min(ny, r0 + chunk_rows))
            gy, gx = np.meshgrid(rows, np.arange(nx), indexing="ij")
            keep = acquired[gy, gx]
            gy, gx = gy[keep], gx[keep]
            u = np.stack([gx * pm, gy * pm], axis=1).astype(np.float64)
            xs = msi_to_section(u, geom) / p
            coords = [xs[:, 1], xs[:, 0]]
            f = {k: ndimage.map_coordinates(v, coords, order=1, cval=0.0) for k, v in fields.items()}
            tissue = np.clip(f["viable"] + f["necrosis"], 0, 1)
            supp = (1 - 0.45 * f["viable"] - 0.3 * f["necrosis"]) * (1 + 0.08 * f["supp_noise"])
            m = gy.size
            expected = np.zeros((m, len(species)))
            for j, kind in enumerate(sp_kind):
                if kind == "matrix":
                    base = 400.0 * (1 - 0.5 * tissue)
                elif kind == "viable_lipid":
                    base = 2000.0 * (f["viable"] + 0.4 * f["necrosis"]) * supp
                elif kind == "necrotic_lipid":
                    base = 2000.0 * f["necrosis"] * supp
                elif kind == "daunorubicin_is":
                    base = gain * params.internal_standard_ug_per_g * supp
                else:
                    base = gain * f[kind] * supp
                expected[:, j] = base * sp_rel[j]
            counts = rng.poisson(expected).astype(np.float32)
            if params.msi_mode == "continuous":
                order = np.argsort(sp_mz)
                # merge species sharing a rounded axis position
                pos = np.searchsorted(mz_axis, np.round(sp_mz[order], 4))
                mat = np.zeros((m, mz_axis.size), dtype=np.float32)
                np.add.at(mat, (slice(None), pos), counts[:, order])
                npos = np.searchsorted(mz_axis, np.round(noise_axis, 4))
                present = rng.random((m, noise_axis.size)) < 0.5
                mat[:, npos] += np.where(present, rng.geometric(0.2, (m, noise_axis.size)), 0).astype(np.float32)
                writer.add_spectra(np.stack([gx + 1, gy + 1], axis=1), mat)
                continue
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
            lengths = np.bincount(pix, minlength=m)
            writer.add_spectra(np.stack([gx + 1, gy + 1], axis=1), all_int[order], all_mz[order], lengths)
    return acquired


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


# ----------------------------------------------------------------------------- cohort

def sample_seed(base_seed: int, sample: str) -> int:
    """A per-sample seed that depends on the sample name, not its row order."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{base_seed}:{sample}".encode()).digest()[:4], "little")


def generate_sample(sample: str, outputs: dict, truth_dir: str | Path, params: PhantomParams,
                    thresholds: dict | None = None) -> dict:
    """Generate every modality of one demo sample and its ground truth.

    Parameters
    ----------
    sample : str
        Sample identifier (subject_tumour).
    outputs : dict
        Paths for ``fluorescence``, ``he``, ``msi`` (the .imzML), ``volume``
        and ``volume_mask``.
    truth_dir : path-like
        Folder for the ground truth (``truth.json``, ``landmarks_msi.csv``,
        ``truth_maps.ome.tif``, ``truth_masks.ome.tif``).
    params : PhantomParams
        With the per-sample ``seed`` already set.
    thresholds : dict, optional
        Coverage thresholds per analyte, for the ground-truth coverage.

    Returns
    -------
    dict
        The ground-truth record written to ``truth.json``.
    """
    import pandas as pd

    truth_dir = Path(truth_dir)
    rng = np.random.default_rng(params.seed + 1)
    truth = simulate_section(params)
    p = truth.spacing_um

    write_ome_tiff(outputs["fluorescence"], render_fluorescence(truth, rng))
    n = truth.tissue.shape[0]
    he_geom = {
        "rotation_deg": float(rng.uniform(-params.he_rotation_deg, params.he_rotation_deg)),
        "translation": rng.uniform(-params.he_translation_um, params.he_translation_um, 2).tolist(),
        "centre": [n * p / 2, n * p / 2], "mirrored": bool(params.he_mirrored),
    }
    write_ome_tiff(outputs["he"], render_he(truth, he_geom, rng))

    geom = msi_geometry(truth, params, rng)
    uid = deterministic_uuid("nanohet-phantom", sample, params.seed)
    acquired = write_msi(Path(outputs["msi"]), truth, params, geom, rng, uid)

    vol, vmask, vol_mean = simulate_volume(truth, params, rng)
    write_volume(outputs["volume"], vol)
    write_volume(outputs["volume_mask"], vmask)

    # Landmarks: MSI pixel centres on tissue and their true section positions.
    ys, xs = np.nonzero(acquired)
    u_all = np.stack([xs, ys], axis=1) * params.msi_pixel_um
    x_all = msi_to_section(u_all, geom)
    ij = np.round(x_all / p).astype(int)
    inside = (ij >= 0).all(1) & (ij < n).all(1)
    on_tissue = np.zeros(len(u_all), bool)
    on_tissue[inside] = truth.tissue[ij[inside, 1], ij[inside, 0]]
    pick = rng.choice(np.flatnonzero(on_tissue), size=min(20, int(on_tissue.sum())), replace=False)
    landmarks = pd.DataFrame({
        "msi_x_um": u_all[pick, 0], "msi_y_um": u_all[pick, 1],
        "section_x_um": x_all[pick, 0], "section_y_um": x_all[pick, 1],
    })
    write_table(landmarks, truth_dir / "landmarks_msi.csv")

    factor = max(int(round(params.truth_pixel_um / p)), 1)
    maps = np.stack([block_reduce_mean(a, factor) for a in
                     (truth.nanoparticle, truth.drug, truth.metabolite, truth.carrier)]).astype(np.float32)
    write_ome_tiff(truth_dir / "truth_maps.ome.tif", SectionImage(
        maps, ["nanoparticle", "drug", "metabolite", "carrier"], (p * factor,) * 2,
        block_origin((0.0, 0.0), (p, p), factor)))
    masks = np.stack([truth.tissue, truth.necrosis, truth.vessels, truth.macrophages > 0.5]).astype(np.uint8)
    write_ome_tiff(truth_dir / "truth_masks.ome.tif",
                   SectionImage(masks, ["tissue", "necrosis", "vessels", "macrophages"], (p, p)))

    from .quantify import section_truth_metrics

    metrics = section_truth_metrics(truth, params.msi_pixel_um, thresholds=thresholds)
    record = {
        "sample": sample, "params": asdict(params), "section": truth.params,
        "msi_geometry": geom, "he_geometry": he_geom, "msi_acquired_pixels": int(acquired.sum()),
        "volume_true_mean_uptake_pct_id_per_g": vol_mean, "metrics": metrics,
    }
    write_text_atomic(truth_dir / "truth.json", json.dumps(record, indent=2, sort_keys=True, default=float))
    return record


def params_from_config(demo_cfg: dict, group: str, sample: str) -> PhantomParams:
    """Build the :class:`PhantomParams` of one sample from the config's ``demo`` section."""
    base = {k: v for k, v in demo_cfg.get("phantom", {}).items()}
    groups = demo_cfg.get("groups", {})
    if group not in groups:
        from .errors import InputError

        raise InputError(f"demo sample {sample}: group {group!r} is not defined under demo.groups "
                         f"in the config (defined: {sorted(groups)})")
    base.update(groups[group])
    for key in ("vessel_radius_um", "np_half_distance_um"):
        if key in base:
            base[key] = tuple(base[key])
    params = PhantomParams(**base)
    scale = float(demo_cfg.get("scale", 1.0))
    return replace(params, seed=sample_seed(int(demo_cfg.get("seed", 0)), sample),
                   tumour_diameter_mm=params.tumour_diameter_mm * scale)
