"""Registration quality control: overlap, error and deformation measures, and the rules that flag an edge.

An edge is flagged when its fit is worse than its start (metric or tissue Dice), the optimiser ended worse
than the chosen start pose (which is then kept), its tissue Dice ends
below ``min_dice``, its B-spline deformation folds, or the start-pose search found another orientation
almost as good (``pose_margin`` below ``min_pose_margin``), or, without a search, a check of other
orientations finds one that fits better (``orientation_margin`` below 0). With ``fail_on_flag`` a flagged
edge fails.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..settings import EdgeSettings
from .graph import components
from .landmarks import Landmarks, landmark_transform
from .resample import resample_to


def deformation_summary(transform: sitk.Transform, grid: sitk.Image) -> dict:
    """Size and regularity of the non-linear part of a registration transform on ``grid``.

    Returns
    -------
    dict
        ``deformation_max`` (largest B-spline displacement, physical units)
        and ``jacobian_min`` (smallest Jacobian determinant of the B-spline
        map; at or below 0 the map folds, i.e. is not invertible there).
        Both NaN for a linear transform.
    """
    parts = [p for p in components(transform) if p.GetName() == "BSplineTransform"]
    if not parts:
        return {"deformation_max": float("nan"), "jacobian_min": float("nan")}
    field = sitk.TransformToDisplacementField(parts[0], sitk.sitkVectorFloat64, grid.GetSize(), grid.GetOrigin(),
                                              grid.GetSpacing(), grid.GetDirection())
    disp = sitk.GetArrayFromImage(field)
    jac = sitk.GetArrayFromImage(sitk.DisplacementFieldJacobianDeterminant(field))
    return {"deformation_max": float(np.sqrt((disp ** 2).sum(-1)).max()), "jacobian_min": float(jac.min())}


def target_registration_error(transform: sitk.Transform, fixed_points: np.ndarray,
                              moving_points: np.ndarray) -> np.ndarray:
    """Distances between transformed fixed points and their true moving positions.

    Parameters
    ----------
    transform : sitk.Transform
        Fixed -> moving transform from :func:`register`.
    fixed_points, moving_points : ndarray, shape (N, 2)
        Corresponding points ``(x, y)`` in physical units.

    Returns
    -------
    ndarray, shape (N,)
        Target registration error (Fitzpatrick & West, IEEE TMI 1998) per
        point, in physical units.
    """
    mapped = np.array([transform.TransformPoint(tuple(map(float, p))) for p in fixed_points])
    return np.hypot(*(mapped - np.asarray(moving_points)).T)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap 2|A∩B| / (|A|+|B|) of two boolean masks (Dice, Ecology 1945)."""
    s = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / s) if s else float("nan")


def start_transform(fixed: sitk.Image, moving: sitk.Image, centring: str, points: Landmarks | None):
    """The pose an edge starts from: the landmark transform, else the centring (moments or geometry)."""
    if points is not None:
        return landmark_start(points)
    return sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler2DTransform(),
        sitk.CenteredTransformInitializerFilter.GEOMETRY if centring == "geometry"
        else sitk.CenteredTransformInitializerFilter.MOMENTS)


def landmark_start(points: Landmarks | None):
    """Initial transform from the ``init`` landmark pairs (None without landmarks)."""
    return None if points is None else landmark_transform(points.fixed[points.init], points.moving[points.init])


def landmark_qc(points: Landmarks | None, start, result) -> dict:
    """Landmark TRE (µm) at the start pose and after registration, on the ``check`` points."""
    if points is None or not points.check.any():
        return {"landmark_points": 0, "landmark_tre_before_um": np.nan, "landmark_tre_median_um": np.nan,
                "landmark_tre_max_um": np.nan, "landmark_check": ""}
    f, m = points.fixed[points.check], points.moving[points.check]
    after = target_registration_error(result.transform, f, m)
    return {"landmark_points": int(points.check.sum()),
            "landmark_tre_before_um": float(np.median(target_registration_error(start, f, m))),
            "landmark_tre_median_um": float(np.median(after)), "landmark_tre_max_um": float(after.max()),
            # error on the points that also set the start pose is a fiducial error, an optimistic TRE
            "landmark_check": "independent" if points.independent_check else "init points"}


def flag_reasons(result, dice_before: float, dice_after: float, deformation: dict, edge: EdgeSettings) -> list[str]:
    """Why an edge is flagged (empty: not flagged); see the module docstring."""
    # masks of two modalities at different resolutions disagree by ~0.01 even when aligned: dice_tolerance
    folds = bool(deformation["jacobian_min"] <= 0)  # NaN (no deformation) compares False
    # two different orientations that fit (almost) equally well: the search may have picked the wrong one
    ambiguous = bool(result.pose_margin < edge.min_pose_margin)
    # without a search: another orientation, tried only as a check, fits better than the result
    reachable = not bool(result.orientation_margin < 0)  # NaN (not checked) compares False
    return [text for bad, text in (
        (result.metric_after > result.metric_before, "metric worse than at the start"),
        (result.kept_start, "the optimiser ended clearly worse than its start pose (the start is kept)"),
        (dice_after < dice_before - edge.dice_tolerance, "tissue Dice dropped"),
        (dice_after < edge.min_dice, f"tissue Dice below {edge.min_dice}"),
        (folds, "B-spline deformation folds"),
        (ambiguous, "another orientation fits almost as well"),
        (not reachable, "another orientation fits better: the start pose was outside the optimiser's reach "
                        "(start-pose search: rotation_search_step_deg, flip_search)")) if bad]


def edge_qc(sample: str, name: str, edge: EdgeSettings, result, fixed, moving, points: Landmarks | None = None):
    """The QC row of one section edge (measured on the fixed grid) and the start transform.

    ``fixed`` and ``moving`` are :class:`~nanohet.registration.images.RegistrationInput`. Tissue Dice
    before is measured at the start pose (landmarks, else the centring), after at the result.
    """
    start = start_transform(fixed.image, moving.image, edge.centring, points)
    grid = fixed.image
    tissue_fixed = sitk.GetArrayFromImage(fixed.tissue) >= 0.5
    dice_before = dice(tissue_fixed, np.nan_to_num(resample_to(moving.tissue, grid, start)) >= 0.5)
    dice_after = dice(tissue_fixed, np.nan_to_num(resample_to(moving.tissue, grid, result.transform)) >= 0.5)
    deformation = deformation_summary(result.transform, grid)
    reasons = flag_reasons(result, dice_before, dice_after, deformation, edge)
    qc = {
        "sample": sample, "edge": name, "moving_image": moving.label, "fixed_image": fixed.label,
        "transform": edge.transform, "metric": "mattes_mi",
        "metric_before": result.metric_before, "metric_after": result.metric_after,
        "dice_before": dice_before, "dice_after": dice_after, "initial_rotation_deg": result.initial_rotation_deg,
        "flipped": result.flipped, "pose_margin": result.pose_margin,
        "orientation_margin": result.orientation_margin, "iterations": result.iterations,
        "stop_condition": result.stop_condition,
        "initialisation": "landmarks" if points is not None else edge.centring,
        **landmark_qc(points, start, result),
        "deformation_max_um": deformation["deformation_max"], "jacobian_min": deformation["jacobian_min"],
        "flagged": bool(reasons), "flag_reason": "; ".join(reasons),
        # the one column that differs between reruns; `nanohet verify` compares tables without it
        "run_time_s": round(result.runtime_s, 1),
    }
    return qc, start


def volume_edge_qc(sample: str, name: str, result, dice_before: float, dice_after: float, start: str,
                   dice_tolerance: float = 0.02) -> dict:
    """The QC row of one volume edge, before and after measured the same way (at the start pose and at the fit).

    The edge is flagged when its metric or its tumour-mask Dice ends worse than at the start
    (``dice_tolerance``); it then keeps the start pose (``kept_start``): the scanner frame for volumes that share
    it, else the grid centres aligned.
    """
    reasons = [text for bad, text in (
        (result.metric_after > result.metric_before, "metric worse than at the start"),
        (dice_after < dice_before - dice_tolerance, "tumour-mask Dice dropped")) if bad]
    if reasons:
        reasons.append("kept the start pose (" + ("the shared scanner frame" if start == "scanner" else
                                                  "grid centres aligned") + ")")
    return {"sample": sample, "edge": name, "transform": "rigid", "metric": "mattes_mi", "start": start,
            "metric_before": result.metric_before, "metric_after": result.metric_after,
            "dice_before": dice_before, "dice_after": dice_after, "iterations": result.iterations,
            "stop_condition": result.stop_condition, "flagged": bool(reasons), "kept_start": bool(reasons),
            "flag_reason": "; ".join(reasons),
            "run_time_s": round(result.runtime_s, 1)}  # differs between reruns; `nanohet verify` ignores it
