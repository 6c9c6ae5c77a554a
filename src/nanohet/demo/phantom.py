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

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..image import SectionImage, convolve_same
from .geometry import he_to_section

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
    # the MSI spot's side over the pixel pitch: 10 % wider than the square pixel the truth's footprint assumes
    # (blur the analysis does not know of)
    msi_footprint_factor: float = 1.1
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
    # the sample's uptake relative to its group's: 1 + its animal's, tumour's and section's effects
    # (set from demo.level_sd by nanohet.demo.cohort.params_from_config)
    uptake_factor: float = 1.0
    interpatient_log_sigma: float = 0.35
    drug_load_ug_per_g: float = 4.0
    internal_standard_ug_per_g: float = 2.0
    msi_rotation_deg: float = 10.0
    msi_scale_range: float = 0.03
    msi_mirrored: bool = False
    msi_translation_um: float = 120.0
    msi_deformation_um: float = 8.0
    he_translation_um: float = 60.0
    he_rotation_deg: float = 2.0
    he_mirrored: bool = False
    msi_noise_peaks: float = 40.0
    msi_ppm_sigma: float = 1.5
    msi_counts_per_ug_per_g: float = 60.0
    # Ionisation response per µg/g relative to the internal standard's (1 where not listed): the drug ionises
    # 1.3 times as well as the standard, so the equal-response assumption is 30 % off.
    msi_response: dict = field(default_factory=lambda: {"doxorubicin": 1.3})
    # Matrix effects: fractional ion suppression (viable, necrotic tissue) per ion species ("default": every
    # species not listed, the internal standard included). Necrosis suppresses the drug more than the standard.
    msi_suppression: dict = field(default_factory=lambda: {"default": (0.45, 0.30), "doxorubicin": (0.45, 0.34)})
    # Calibration standards (mimetic tissue: a homogenate of control tumour spiked at a known concentration):
    # viable fraction of the homogenate and the side of the imaged square (MSI pixels).
    standard_viable_fraction: float = 0.8
    standard_pixels: int = 10


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


def _irregular_radius(theta: np.ndarray, radius: float, rng, amplitude: float) -> np.ndarray:
    """An irregular outline's radius at the angles ``theta`` (radians): ``radius`` times 1 plus random harmonics
    2-7; evaluated on a table of 4096 angles and interpolated (within 1e-6 of the radius)."""
    table = np.linspace(-np.pi, np.pi, 4097)
    r = np.ones_like(table)
    for k in range(2, 8):
        r += rng.normal(0.0, amplitude / k ** 0.8) * np.cos(k * table + rng.uniform(0, 2 * np.pi))
    return radius * np.interp(theta, table, r).astype(np.float32)


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
    tissue, necrosis, rel, radius, centre = _tumour(params, rng)
    viable = tissue & ~necrosis
    area_mm2 = viable.sum() * (p / 1000.0) ** 2
    vessels, source, n_vessels = _vessels(params, rng, viable, rel, area_mm2)
    # Nanoparticle extravasation: exponential kernel with the animal's half-distance.
    half_distance = rng.uniform(*params.np_half_distance_um)
    lam = half_distance / math.log(2.0) / p
    h = int(math.ceil(6 * lam))
    ky, kx = np.mgrid[-h:h + 1, -h:h + 1]
    kernel = np.exp(-np.hypot(ky, kx) / lam).astype(np.float32)
    np_free = convolve_same(source, kernel).clip(min=0) * tissue
    macrophages = _macrophages(params, rng, viable, rel)
    dose = params.group_uptake * params.uptake_factor * rng.lognormal(0.0, params.interpatient_log_sigma)
    np_free *= dose / max(float(np_free[viable].mean()), 1e-12)
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


def _tumour(params: PhantomParams, rng):
    """Irregular tumour outline with an irregular necrotic core: tissue, necrosis, relative radius (0 centre,
    1 outline), radius (µm) and centre (µm)."""
    p = params.microscopy_pixel_um
    radius = 500.0 * params.tumour_diameter_mm * rng.uniform(0.9, 1.1)
    fov = 2 * radius * 1.25 + 2000.0 * params.margin_mm
    n = int(math.ceil(fov / p))
    centre = np.array([n * p / 2, n * p / 2]) + rng.normal(0, 0.03 * radius, 2)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) * np.float32(p)
    dx, dy = xx - centre[0], yy - centre[1]
    r = np.hypot(dx, dy)
    boundary = _irregular_radius(np.arctan2(dy, dx), radius, rng, 0.08)
    tissue = r < boundary
    rel = np.clip(r / boundary, 0, 1)
    nc = centre + rng.normal(0, 0.08 * radius, 2)
    rn = np.hypot(xx - nc[0], yy - nc[1])
    tn = np.arctan2(yy - nc[1], xx - nc[0])
    necrosis = tissue & (rn < _irregular_radius(tn, radius * rng.uniform(0.3, 0.42), rng, 0.15))
    return tissue, necrosis, rel, radius, centre


def _vessels(params: PhantomParams, rng, viable, rel, area_mm2: float):
    """Vessels: a Poisson count of discs placed preferentially at the rim, each with a lognormal
    permeability. Returns the vessel mask, the extravasation source (permeability on the discs), the count."""
    p = params.microscopy_pixel_um
    n = viable.shape[0]
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
    return vessels, source, n_vessels


def _macrophages(params: PhantomParams, rng, viable, rel) -> np.ndarray:
    """Macrophage density (0-1): Gaussian patches in the outer viable rim."""
    p = params.microscopy_pixel_um
    n = viable.shape[0]
    macrophages = np.zeros((n, n), dtype=np.float32)
    ys_v, xs_v = np.nonzero(viable & (rel > 0.6))
    for _ in range(params.macrophage_patches):
        k = rng.integers(len(ys_v))
        sigma = rng.uniform(60, 120) / p
        _add_gaussian_patch(macrophages, ys_v[k], xs_v[k], sigma)
    return np.clip(macrophages, 0, 1) * viable


def _add_gaussian_patch(field: np.ndarray, y: int, x: int, sigma: float, truncate: float = 3.0) -> None:
    """Add (in place) a Gaussian of SD ``sigma`` pixels and peak about 1 centred on pixel (y, x): the normalised
    sampled kernel of ``scipy.ndimage.gaussian_filter`` (cut at ``truncate`` SDs) times 2 pi sigma², computed on
    its support only (filtering a whole field per patch cost the demo 2 s a section); mass outside the field is
    dropped."""
    r = int(truncate * sigma + 0.5)
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    y0, y1, x0, x1 = max(y - r, 0), min(y + r + 1, field.shape[0]), max(x - r, 0), min(x + r + 1, field.shape[1])
    ky, kx = k[y0 - (y - r):y1 - (y - r)], k[x0 - (x - r):x1 - (x - r)]
    field[y0:y1, x0:x1] += (np.outer(ky, kx) * (2 * np.pi * sigma ** 2)).astype(field.dtype)


# ----------------------------------------------------------------------------- rendering

def _point_process(rng, density_per_mm2: np.ndarray, p: float) -> np.ndarray:
    prob = np.clip(density_per_mm2 * (p / 1000.0) ** 2, 0, 1)
    return (rng.random(prob.shape, dtype=np.float32) < prob).astype(np.float32)


# The nanoparticle channel's label counts per unit of the nanoparticle field: one fixed scale for every section
# (a microscope's gain and exposure), so the counts follow the uptake between sections and animals; about 1500
# counts at the 99th percentile of a section of uptake factor 1.
NP_COUNTS_PER_UNIT = 300.0
NUCLEUS_SIGMA_UM = 2.5  # the rendered nucleus: a Gaussian of this SD around its centre
NUCLEUS_RADIUS_UM = 2 * NUCLEUS_SIGMA_UM  # where its stain falls to about an eighth of the centre's


def _hard_core_points(rng, density_per_mm2: np.ndarray, p: float, min_distance_um: float,
                      tries: int = 30) -> np.ndarray:
    """Points (1 on a pixel, float32) of intensity ``density_per_mm2`` no two closer than ``min_distance_um``.

    The points of a Poisson process of that intensity, taken one by one in random order, each kept where no kept
    point lies within the distance, else moved to a random place within two distances around where it was drawn
    (accepted with the ratio of the densities there and at the draw) and tried again, up to ``tries`` times
    before it is dropped: sequential inhibition (Diggle, *Statistical Analysis of Spatial and Spatio-Temporal
    Point Patterns*, 3rd ed. 2013, section 5.8) with local moves, so the density is kept at scales over a few
    distances and a density the distance cannot hold gives fewer points rather than a hang.
    """
    density = np.asarray(density_per_mm2, dtype=np.float64)
    out = np.zeros(density.shape, dtype=np.float32)
    candidates = np.argwhere(_point_process(rng, density, p) > 0)
    candidates = candidates[rng.permutation(len(candidates))]
    d = min_distance_um / p  # pixels
    h, w = density.shape
    reach = int(np.ceil(2 * d))
    buckets: dict = {}

    def free(y, x):
        by, bx = int(y // d), int(x // d)
        return not any((y - qy) ** 2 + (x - qx) ** 2 < d * d
                       for cy in (by - 1, by, by + 1) for cx in (bx - 1, bx, bx + 1)
                       for qy, qx in buckets.get((cy, cx), ()))

    moves = rng.integers(-reach, reach + 1, size=(len(candidates), tries, 2))
    accept = rng.random((len(candidates), tries))
    for k, (y0, x0) in enumerate(candidates):
        y, x = int(y0), int(x0)
        for t in range(tries + 1):
            if free(y, x):
                buckets.setdefault((int(y // d), int(x // d)), []).append((y, x))
                out[y, x] = 1.0
                break
            if t < tries:  # a move the density accepts; else the next try stays where it is
                ny, nx = int(y0 + moves[k, t, 0]), int(x0 + moves[k, t, 1])
                if 0 <= ny < h and 0 <= nx < w and accept[k, t] * density[y0, x0] < density[ny, nx]:
                    y, x = ny, nx
    return out


# Nuclei of neighbouring cells do not overlap in a section: no two nucleus centres closer than this (a Poisson
# process put a third of the nuclei within 5.5 µm of another, closer than any stain-based method separates, and the
# merged nuclei biased per-cell fractions towards sparse tissue).
NUCLEUS_MIN_DISTANCE_UM = 8.0


def nuclei_points(truth: SectionTruth, rng) -> np.ndarray:
    """The true nucleus centres (1 on the pixel of each, float32): a hard-core point process
    (:data:`NUCLEUS_MIN_DISTANCE_UM`) of 4000 per mm² in viable tissue and 400 per mm² in necrosis.
    :func:`render_fluorescence` draws them first from its ``rng``."""
    return _hard_core_points(rng, np.where(truth.viable, 4000.0, np.where(truth.necrosis, 400.0, 0.0)),
                             truth.spacing_um, NUCLEUS_MIN_DISTANCE_UM)


def render_fluorescence(truth: SectionTruth, rng, nuclei: np.ndarray | None = None) -> SectionImage:
    """Render the 4-channel fluorescence image (DAPI, CD31, NP, F4/80), uint16.

    Nuclei (``nuclei``: the centres of :func:`nuclei_points`, drawn from ``rng`` when not given) and macrophages
    are point processes blurred by a cell-sized kernel; all channels get tissue autofluorescence, background, an
    optical blur of 1 µm and Poisson (shot) noise.
    """
    p = truth.spacing_um
    viable, necrosis, tissue = truth.viable, truth.necrosis, truth.tissue
    nuclei = nuclei_points(truth, rng) if nuclei is None else nuclei
    nuclei = ndimage.gaussian_filter(nuclei, NUCLEUS_SIGMA_UM / p) * (2 * np.pi * (NUCLEUS_SIGMA_UM / p) ** 2)
    macro_cells = _point_process(rng, 1500.0 * truth.macrophages, p)
    macro_cells = ndimage.gaussian_filter(macro_cells, 4.0 / p) * (2 * np.pi * (4.0 / p) ** 2)
    autof = np.where(viable, 120.0, 0.0) + np.where(necrosis, 200.0, 0.0)
    channels = [
        100 + autof + 2500.0 * nuclei,
        100 + 0.5 * autof + 2500.0 * truth.vessels,
        100 + 0.5 * autof + NP_COUNTS_PER_UNIT * truth.nanoparticle,
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
