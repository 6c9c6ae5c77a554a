"""Measures of an in vivo volume (PET, SPECT, CT, MR) inside its tumour mask, in 3-D and in mm."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import InputError
from ..image import convolve_same


def volume_metrics(image: sitk.Image, mask: sitk.Image) -> dict:
    """Uptake statistics of a volume inside a mask.

    Parameters
    ----------
    image : sitk.Image
        Uptake or intensity volume (e.g. SUV or %ID/g).
    mask : sitk.Image
        Non-zero inside the tumour; must share the image's grid (size,
        spacing, origin, direction within 1e-4).

    Returns
    -------
    dict
        ``mean``, ``median``, ``cv`` (standard deviation / mean, a standard
        heterogeneity index), ``p90`` and ``volume_mm3`` (voxel count x voxel
        volume).
    """
    from ..io.volumes import grid_difference

    differs = grid_difference(image, mask)
    if differs:
        raise InputError(f"the volume and its mask are not on the same grid: {differs} (volume vs mask)")
    values = sitk.GetArrayViewFromImage(image).astype(np.float64)
    m = sitk.GetArrayViewFromImage(mask) > 0
    if not m.any():
        raise InputError("the tumour mask is empty")
    inside = values[m]
    if not np.isfinite(inside).all():
        raise InputError("the volume has NaN or infinite values inside the tumour mask")
    mean = float(inside.mean())
    return {
        "mean": mean, "median": float(np.median(inside)),
        "cv": float(inside.std() / mean) if mean else float("nan"),
        "p90": float(np.percentile(inside, 90)),
        "volume_mm3": float(m.sum() * np.prod(image.GetSpacing())),
    }


PEAK_VOLUME_MM3 = 1000.0  # 1 cm³


def sphere_kernel(spacing_zyx, volume_mm3: float = PEAK_VOLUME_MM3) -> np.ndarray:
    """Binary kernel of the voxels whose centres lie within the sphere of ``volume_mm3`` (radius
    ``(3 V / 4 pi)^(1/3)``, 6.2 mm for 1 cm³) around the centre voxel, for voxel spacing ``(z, y, x)`` in mm."""
    radius = (3.0 * volume_mm3 / (4.0 * np.pi)) ** (1.0 / 3.0)
    half = [int(np.floor(radius / s)) for s in spacing_zyx]
    grids = np.meshgrid(*[np.arange(-h, h + 1) * s for h, s in zip(half, spacing_zyx)], indexing="ij")
    return (sum(g ** 2 for g in grids) <= radius ** 2 + 1e-9).astype(np.float64)


def intensity_peaks(values: np.ndarray, mask: np.ndarray, spacing_zyx,
                    volume_mm3: float = PEAK_VOLUME_MM3) -> tuple[float, float]:
    """IBSI local and global intensity peaks: the mean intensity in a 1 cm³ sphere centred on a voxel.

    Local intensity peak (IBSI VJGA): the sphere around the region's most intense voxel (the highest sphere mean
    when several share the maximum). Global intensity peak (0F91): the highest sphere mean over every voxel of
    the region. The spheres take the intensities of the whole image, not only the region's, and count the
    voxels inside the image only (IBSI reference manual, "Local intensity features"). The global peak is
    PERCIST's SUVpeak when the image is in SUV (Wahl et al., J Nucl Med 2009;50:122S).

    Parameters
    ----------
    values : ndarray, (Z, Y, X)
        The whole image (finite values; NaN voxels are left out of the spheres).
    mask : ndarray of bool, (Z, Y, X)
        The region.
    spacing_zyx : sequence of float
        Voxel spacing in mm, z first.
    """
    if not mask.any():
        raise InputError("the region is empty")
    kernel = sphere_kernel(spacing_zyx, volume_mm3)
    finite = np.isfinite(values)
    sums = convolve_same(np.where(finite, values, 0.0), kernel)
    counts = np.rint(convolve_same(finite.astype(np.float64), kernel))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan)
    inside = mask & finite
    top = values[inside].max()
    local = float(np.nanmax(means[inside & (values == top)]))
    return local, float(np.nanmax(means[inside]))


def depth_shells(mask: np.ndarray, spacing_zyx, edges_mm) -> dict[str, np.ndarray]:
    """Shells of a 3-D region by Euclidean depth (mm) from its boundary: ``rim`` up to the first edge,
    ``periphery`` to the second, ``core`` beyond (one edge: rim and core; none: no shells)."""
    edges = sorted(float(e) for e in edges_mm)
    names = {0: (), 1: ("rim", "core"), 2: ("rim", "periphery", "core")}
    if len(edges) not in names:
        raise InputError(f"at most two shell edges, got {edges}")
    if not edges:
        return {}
    depth = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=spacing_zyx)[1:-1, 1:-1, 1:-1]
    bounds = [0.0] + edges + [np.inf]
    return {name: mask & (depth > lo) & (depth <= hi) for name, lo, hi in zip(names[len(edges)], bounds[:-1],
                                                                               bounds[1:])}


def volume_rows(image: sitk.Image, mask: sitk.Image, quantify, unit: str = "image units") -> list[dict]:
    """Every measure of an in vivo volume inside its tumour mask, as ``region, metric, value, unit, ibsi`` rows.

    Region ``tumour``: :func:`volume_metrics`, the distribution measures and IBSI statistics and histogram
    (:func:`~.section.region_rows`), the 3-D texture (:func:`~.section.texture_rows`: merged 3-D GLCM, 3-D
    GLSZM) and the local and global intensity peaks (:func:`intensity_peaks`; SUVmax is ``stat_maximum``,
    SUVmean ``mean``, SUVpeak ``global_intensity_peak`` when the image is in SUV). Shells by depth from the
    tumour boundary (``quantify.volume_shell_edges_mm``): mean, median, CV, Gini; and the rim-to-core ratio.
    """
    from .metrics import gini_coefficient, region_stats
    from .section import region_rows, texture_rows

    found = volume_metrics(image, mask)
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    m = sitk.GetArrayFromImage(mask) > 0
    spacing = tuple(float(s) for s in reversed(image.GetSpacing()))  # (z, y, x) mm
    units = {"mean": unit, "median": unit, "cv": "1", "p90": unit, "volume_mm3": "mm3"}
    rows = [{"region": "tumour", "metric": k, "value": v, "unit": units[k], "ibsi": ""} for k, v in found.items()]
    rows += [{"region": "tumour", **r} for r in region_rows(values, m, unit, None, int(quantify.histogram_bins))]
    rows += [{"region": "tumour", **r} for r in texture_rows(values, m, int(quantify.texture_levels))]
    local, peak = intensity_peaks(values, m, spacing)
    rows += [{"region": "tumour", "metric": "local_intensity_peak", "value": local, "unit": unit, "ibsi": "VJGA"},
             {"region": "tumour", "metric": "global_intensity_peak", "value": peak, "unit": unit, "ibsi": "0F91"}]
    means = {}
    for name, shell in depth_shells(m, spacing, quantify.volume_shell_edges_mm).items():
        stats = region_stats(values, shell)  # the section shells' measures (coverage: no threshold here)
        means[name] = stats["mean"]
        stats["gini"] = gini_coefficient(values[shell & np.isfinite(values)])
        rows += [{"region": name, "metric": k, "value": v, "ibsi": "",
                  "unit": {"mean": unit, "median": unit, "n_pixels": "voxels"}.get(k, "1")}
                 for k, v in stats.items() if k != "coverage"]
    if "rim" in means and "core" in means:
        ratio = means["rim"] / means["core"] if means["core"] else float("nan")
        rows.append({"region": "tumour", "metric": "rim_to_core_ratio", "value": ratio, "unit": "1", "ibsi": ""})
    return rows


def percent_injected_dose_rows(suv: np.ndarray, mask: np.ndarray, voxel_ml: float, weight_kg: float) -> list[dict]:
    """%ID/g and %ID of a tumour from a body-weight SUV image, as ``region, metric, value, unit, ibsi`` rows.

    The percentage of the injected dose per gram is ``100 C / A`` with C the activity concentration (Bq/g, tissue
    density 1 g/ml) and A the injected activity decayed to the same time; SUVbw is ``C W / A`` with W the body
    weight in g, so ``%ID/g = 100 SUVbw / W``, with SUVbw's decay correction (the dose decayed to the scan
    reference time). The tumour's %ID is the sum over its voxels of ``%ID/g x voxel volume`` (ml = g). Definitions:
    Kinahan & Fletcher, Semin Ultrasound CT MR 2010;31:496 (SUV); %ID/g as used in preclinical biodistribution.

    Parameters
    ----------
    suv : ndarray
        SUVbw per voxel.
    mask : ndarray of bool
        The tumour, same shape.
    voxel_ml : float
        Voxel volume (ml).
    weight_kg : float
        Body weight (kg) the SUV was computed with.

    Returns
    -------
    list of dict
        ``pct_id_per_g_mean``, ``pct_id_per_g_max`` (unit ``%ID/g``) and ``pct_injected_dose`` (``%ID``), region
        ``tumour``; empty without a positive, finite weight.
    """
    if not np.isfinite(weight_kg) or weight_kg <= 0:
        return []
    return injected_fraction_rows(suv / (1000.0 * weight_kg), mask, voxel_ml)


def injected_fraction_rows(fraction_per_ml: np.ndarray, mask: np.ndarray, voxel_ml: float) -> list[dict]:
    """%ID/g (mean, max) and %ID of a tumour from each voxel's activity concentration over the decayed injected
    activity (1/ml, i.e. per g at density 1; see :func:`percent_injected_dose_rows` for the definitions)."""
    v = fraction_per_ml[mask & np.isfinite(fraction_per_ml)]
    per_g = 100.0 * v
    values = {"pct_id_per_g_mean": float(per_g.mean()) if v.size else np.nan,
              "pct_id_per_g_max": float(per_g.max()) if v.size else np.nan,
              "pct_injected_dose": float(per_g.sum() * voxel_ml)}
    units = {"pct_id_per_g_mean": "%ID/g", "pct_id_per_g_max": "%ID/g", "pct_injected_dose": "%ID"}
    return [{"region": "tumour", "metric": k, "value": val, "unit": units[k], "ibsi": ""} for k, val in values.items()]


def counting_volume_rows(kbq_per_ml: np.ndarray, mask: np.ndarray, voxel_ml: float, calibration) -> list[dict]:
    """The tumour's %ID/g, %ID (with an injected dose) and SUVbw mean and max (with a body weight too) from a
    counting volume converted to kBq/ml (``calibration``: :class:`nanohet.io.spect.CountCalibration`), plus the
    conversion's own rows. Definitions: :mod:`nanohet.io.spect`."""
    rows = [{"region": "tumour", "ibsi": "", **r} for r in calibration.as_rows()]
    dose = calibration.decayed_dose_mbq
    if dose is None:
        return rows
    fraction = kbq_per_ml / (dose * 1000.0)  # kBq/ml over kBq: per ml
    rows += injected_fraction_rows(fraction, mask, voxel_ml)
    if calibration.weight_g is not None:
        suv = fraction[mask & np.isfinite(fraction)] * calibration.weight_g
        for name, value in (("suvbw_mean", suv.mean() if suv.size else np.nan),
                            ("suvbw_max", suv.max() if suv.size else np.nan)):
            rows.append({"region": "tumour", "metric": name, "value": float(value), "unit": "SUVbw", "ibsi": ""})
    return rows
