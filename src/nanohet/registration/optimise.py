"""Multimodal 2-D registration with SimpleITK (Mattes mutual information).

Convention: a registration transform maps points of the *fixed* (reference)
frame to the *moving* frame, as ITK's resampling expects, in physical units
(µm for sections).

Method: moments-based centring, an optional search over start angles and mirror states (each start given a
short similarity fit at the coarsest level, ranked by the full-resolution metric, the best refined), then a
multi-resolution rigid stage and an affine stage, both optimising Mattes
mutual information (Mattes et al., IEEE TMI 2003;22:120) with regular
gradient descent and physical-shift parameter scales, and optionally a cubic
B-spline free-form deformation (Rueckert et al., IEEE TMI 1999;18:712) on a
coarse control grid (its spacing, in µm, is the regulariser) optimised with
L-BFGS-B on the finest pyramid levels. Sampling is random with a fixed seed
and the metric runs single-threaded by default, so reruns give bit-identical
transforms.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..settings import OptimiserSettings
from .graph import components

RegistrationSettings = OptimiserSettings  # the optimiser's parameters (see nanohet.settings)
NEAR_START_LEARNING_RATE = 0.25  # first step of each pyramid level when refining a searched or landmark start
KEPT_START_TOLERANCE = 0.01  # refined fits ending more MI than this worse than their start are flagged


@dataclass
class RegistrationResult:
    """Outcome of :func:`register`.

    ``transform`` is an ``AffineTransform``, or for the ``bspline`` model a
    ``CompositeTransform`` (affine applied after the B-spline deformation).
    """

    transform: sitk.Transform
    metric_before: float
    metric_after: float
    iterations: int
    stop_condition: str
    runtime_s: float
    initial_rotation_deg: float
    flipped: bool = False
    pose_margin: float = float("nan")
    """Final-metric advantage of the chosen fit over the best clearly different refined pose (search only; NaN
    when every other orientation was clearly worse already at the coarse level)."""
    kept_start: bool = False
    """The optimiser ended clearly worse (by more than ``KEPT_START_TOLERANCE``) than the chosen fit's start pose,
    which was kept. (A start that the refinement cannot improve at all is kept silently.)"""
    orientation_margin: float = float("nan")
    """Without a search: advantage of the fit over the best clearly different orientation, each after the same
    short coarse optimisation."""


def _centring(settings: OptimiserSettings):
    modes = {"moments": sitk.CenteredTransformInitializerFilter.MOMENTS,
             "geometry": sitk.CenteredTransformInitializerFilter.GEOMETRY}
    if settings.centring not in modes:
        raise ValueError(f"centring must be moments or geometry, got {settings.centring!r}")
    return modes[settings.centring]


@contextlib.contextmanager
def _itk_threads(n: int):
    # Filters (smoothing inside the pyramid) honour the global default; restore it afterwards.
    old = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(n)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(old)


def _method(settings: OptimiserSettings, fixed_mask=None, moving_mask=None) -> sitk.ImageRegistrationMethod:
    r = sitk.ImageRegistrationMethod()
    r.SetMetricAsMattesMutualInformation(numberOfHistogramBins=settings.histogram_bins)
    r.SetMetricSamplingStrategy(r.RANDOM)
    r.SetMetricSamplingPercentage(settings.sampling_percentage, settings.seed)
    r.SetInterpolator(sitk.sitkLinear)
    r.SetNumberOfThreads(settings.threads)
    if fixed_mask is not None:
        r.SetMetricFixedMask(fixed_mask)
    if moving_mask is not None:
        r.SetMetricMovingMask(moving_mask)
    return r


def _optimise_over_pyramid(r: sitk.ImageRegistrationMethod, settings: OptimiserSettings,
                           learning_rate: float = 1.0) -> None:
    """Regular-step gradient descent with physical-shift scales over the settings' pyramid; ``learning_rate`` is
    the length of the first step of each level."""
    r.SetOptimizerAsRegularStepGradientDescent(
        learningRate=learning_rate, minStep=1e-4, numberOfIterations=settings.iterations,
        relaxationFactor=0.6, gradientMagnitudeTolerance=1e-8)
    r.SetOptimizerScalesFromPhysicalShift()
    r.SetShrinkFactorsPerLevel(list(settings.shrink_factors))
    r.SetSmoothingSigmasPerLevel(list(settings.smoothing_sigmas))
    r.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()


def _affine_from(tx: sitk.Transform) -> sitk.AffineTransform:
    """The same map (a rigid or similarity transform) as an ``AffineTransform``."""
    aff = sitk.AffineTransform(2)
    aff.SetMatrix(tx.GetMatrix())
    aff.SetTranslation(tx.GetTranslation())
    aff.SetCenter(tx.GetCenter())
    return aff


def _mirror_x(image: sitk.Image) -> sitk.Image:
    """The image with its pixel columns reversed, on the same physical grid.

    (``sitk.Flip`` would also flip the direction cosines, leaving the physical
    image unchanged, which is not a mirror.)
    """
    out = sitk.GetImageFromArray(sitk.GetArrayFromImage(image)[:, ::-1].copy())
    out.CopyInformation(image)
    return out


def _then_mirror(tx: sitk.AffineTransform, moving: sitk.Image) -> sitk.AffineTransform:
    """``M o tx`` where M mirrors x about the moving image's centre (as :func:`_mirror_x` did)."""
    a = np.array(tx.GetMatrix()).reshape(2, 2)
    c = np.array(tx.GetCenter())
    t = np.array(tx.GetTranslation())
    xc = moving.GetOrigin()[0] + (moving.GetSize()[0] - 1) * moving.GetSpacing()[0] / 2.0
    mirror = np.diag([-1.0, 1.0])
    out = sitk.AffineTransform(2)
    out.SetCenter(tuple(c))
    out.SetMatrix(tuple((mirror @ a).ravel()))
    out.SetTranslation(tuple(mirror @ (c + t) + np.array([2 * xc, 0.0]) - c))
    return out


@dataclass
class _Candidate:
    """A start pose after a short coarse optimisation: its metric, start angle and transform (similarity, or
    rigid for the rigid model)."""

    metric: float
    start_angle: float
    fit: sitk.Transform
    flipped: bool
    moving: sitk.Image
    mask: sitk.Image | None
    coarse_angle: float = float("nan")

    def __post_init__(self):
        self.coarse_angle = math.degrees(self.fit.GetAngle())  # the rigid may later be refined in place

    @property
    def angle(self) -> float:
        return self.coarse_angle


def _coarse(settings: OptimiserSettings):
    """Smoothing of the coarsest pyramid level and a function applying it."""
    sigma = float(settings.smoothing_sigmas[0]) if settings.smoothing_sigmas else 0.0
    return sigma, (lambda img: sitk.SmoothingRecursiveGaussian(img, sigma) if sigma > 0 else img)


def _start_model(settings: OptimiserSettings, centred: sitk.Euler2DTransform, angle_deg: float):
    """A start pose at ``angle_deg`` about the centred pose: a similarity (rotation, isotropic scale,
    translation) for the affine and B-spline models, a rotation + translation for the rigid one. The scale
    matters: a few per cent of shrinkage or pixel-size error hide which orientation fits (on demo-sized MSI
    with up to 10 % scale error, rigid short fits of every orientation scored within 0.01 MI of each other)."""
    tx = sitk.Euler2DTransform() if settings.transform == "rigid" else sitk.Similarity2DTransform()
    tx.SetCenter(centred.GetCenter())
    tx.SetTranslation(centred.GetTranslation())
    tx.SetAngle(math.radians(angle_deg))
    return tx


def _shrunk(image: sitk.Image, settings: OptimiserSettings) -> sitk.Image:
    """``image`` (already smoothed) subsampled by the coarsest pyramid level's shrink factor, as the pyramid does:
    the start angles are scored where the short optimisations then run (at the working resolution, scoring cost
    the H&E search a third of its time)."""
    factor = int(settings.shrink_factors[0]) if settings.shrink_factors else 1
    return sitk.Shrink(image, [factor] * image.GetDimension()) if factor > 1 else image


def _short_optimise(fixed, moving, mask, start, settings: OptimiserSettings) -> float:
    """A short optimisation of ``start`` (in place) at the coarsest pyramid level; returns the metric of the
    result on the unsmoothed images, the scale on which the final fits are compared."""
    sigma, _ = _coarse(settings)
    r = _method(settings, moving_mask=mask)
    r.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-4, numberOfIterations=300,
                                               relaxationFactor=0.6, gradientMagnitudeTolerance=1e-8)
    r.SetOptimizerScalesFromPhysicalShift()
    r.SetShrinkFactorsPerLevel([settings.shrink_factors[0]])
    r.SetSmoothingSigmasPerLevel([sigma])
    r.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    r.SetInitialTransform(start, inPlace=True)
    r.Execute(fixed, moving)
    probe = _method(settings, moving_mask=mask)
    probe.SetInitialTransform(start, inPlace=False)
    return float(probe.MetricEvaluate(fixed, moving))


def _search_candidates(fixed, centred, states, angles, settings: OptimiserSettings) -> list[_Candidate]:
    """Every mirror state's start angles ranked on images smoothed like the coarsest pyramid level; the
    ``settings.search_candidates`` best of each state get a short coarse optimisation (at its start pose a
    mirror can look like a rotation; after optimisation it does not) and are ranked by the full-resolution
    metric of its result."""
    _, smooth = _coarse(settings)
    smooth_fixed = _shrunk(smooth(fixed), settings)
    out = []
    for flipped, mov, mask in states:
        if flipped:  # a mirrored image has its own centre of mass
            centred = sitk.Euler2DTransform(sitk.CenteredTransformInitializer(
                fixed, mov, sitk.Euler2DTransform(), _centring(settings)))
        probe = _method(settings, moving_mask=mask)
        smooth_mov = _shrunk(smooth(mov), settings)
        ranked = []
        for angle in angles:
            trial = sitk.Euler2DTransform(centred)
            trial.SetAngle(math.radians(angle))
            probe.SetInitialTransform(trial, inPlace=False)
            ranked.append((probe.MetricEvaluate(smooth_fixed, smooth_mov), angle))
        for _, angle in sorted(ranked)[:settings.search_candidates]:
            trial = _start_model(settings, centred, angle)
            metric = _short_optimise(fixed, mov, mask, trial, settings)
            out.append(_Candidate(metric, angle, trial, flipped, mov, mask))
    return out


def _different(a_angle: float, a_flipped: bool, b_angle: float, b_flipped: bool, min_angle_deg: float = 10.0) -> bool:
    """Clearly different poses: the other mirror state, or rotations more than ``min_angle_deg`` apart."""
    return a_flipped != b_flipped or abs((a_angle - b_angle + 180.0) % 360.0 - 180.0) > min_angle_deg


def _distinct_best(candidates: list[_Candidate], per_state: int) -> list[_Candidate]:
    """The best ``per_state`` clearly different candidates of each mirror state, best first."""
    chosen: list[_Candidate] = []
    for c in sorted(candidates, key=lambda c: c.metric):
        same_state = [k for k in chosen if k.flipped == c.flipped]
        if len(same_state) < per_state and all(_different(c.angle, c.flipped, k.angle, k.flipped) for k in same_state):
            chosen.append(c)
    return chosen


def _margin(best_metric: float, best_angle: float, best_flipped: bool, others) -> float:
    """How much better (lower) the chosen pose's metric is than the best clearly different pose's (``others``:
    ``(metric, angle, flipped)``); NaN when there is none. Near zero or negative: another orientation fits
    (almost) as well."""
    rivals = [m for m, angle, flipped in others if _different(angle, flipped, best_angle, best_flipped)]
    return float(min(rivals) - best_metric) if rivals else float("nan")


def _bspline_stage(fixed: sitk.Image, moving: sitk.Image, mask, affine: sitk.AffineTransform,
                   settings: OptimiserSettings):
    """B-spline deformation of the fixed frame, optimised after ``affine`` (kept fixed).

    The control grid covers the fixed image with about ``bspline_grid_spacing``
    between knots; L-BFGS-B runs on the last two pyramid levels.
    """
    extent = [n * s for n, s in zip(fixed.GetSize(), fixed.GetSpacing())]
    mesh = [max(1, int(math.ceil(e / settings.bspline_grid_spacing))) for e in extent]
    deformation = sitk.BSplineTransformInitializer(fixed, mesh, order=3)
    r = _method(settings, moving_mask=mask)
    r.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=settings.bspline_iterations,
                           maximumNumberOfCorrections=5, maximumNumberOfFunctionEvaluations=1000,
                           costFunctionConvergenceFactor=1e7)
    r.SetShrinkFactorsPerLevel(list(settings.shrink_factors[-2:]))
    r.SetSmoothingSigmasPerLevel(list(settings.smoothing_sigmas[-2:]))
    r.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    r.SetMovingInitialTransform(affine)
    r.SetInitialTransform(deformation, inPlace=True)
    r.Execute(fixed, moving)
    return deformation, r


def _nearest_rigid(tx: sitk.AffineTransform) -> sitk.Euler2DTransform:
    """The rotation + translation closest to an affine map (polar decomposition), same centre."""
    a = np.array(tx.GetMatrix()).reshape(2, 2)
    u, _, vt = np.linalg.svd(a)
    rot = u @ vt
    out = sitk.Euler2DTransform()
    out.SetCenter(tx.GetCenter())
    out.SetAngle(math.atan2(rot[1, 0], rot[0, 0]))
    out.SetTranslation(tx.GetTranslation())
    return out


def register(fixed: sitk.Image, moving: sitk.Image, settings: OptimiserSettings | None = None,
             moving_mask: sitk.Image | None = None,
             initial_transform: sitk.AffineTransform | None = None) -> RegistrationResult:
    """Register ``moving`` onto ``fixed``.

    Parameters
    ----------
    fixed, moving : sitk.Image
        2-D float images with physical spacing and origin (see
        :func:`nanohet.registration.images.prepare_image`).
    settings : OptimiserSettings, optional
        Default: the section defaults of :class:`nanohet.settings.EdgeSettings`.
    moving_mask : sitk.Image, optional
        uint8 mask of valid moving pixels (for MSI: the acquired pixels).
    initial_transform : sitk.AffineTransform, optional
        Start pose (fixed -> moving), for example from landmarks
        (:func:`nanohet.registration.landmarks.landmark_transform`). It replaces the
        centring and the rotation/mirror search; a negative determinant
        (a mirrored section) is handled by mirroring the moving image. The
        affine model starts from it directly; the rigid model from its
        nearest rotation. ``metric_before`` is measured at this pose.

    Returns
    -------
    RegistrationResult
        ``transform`` maps fixed-frame points to the moving frame.
    """
    if settings is None:
        from ..settings import EdgeSettings

        settings = EdgeSettings().optimiser()
    if settings.transform not in ("rigid", "affine", "bspline"):
        raise ValueError(f"transform must be rigid, affine or bspline, got {settings.transform!r}")
    t0 = time.perf_counter()
    with _itk_threads(settings.threads):
        centred = sitk.Euler2DTransform(sitk.CenteredTransformInitializer(
            fixed, moving, sitk.Euler2DTransform(), _centring(settings)))
        probe = _method(settings, moving_mask=moving_mask)
        probe.SetInitialTransform(initial_transform if initial_transform is not None
                                  else sitk.Euler2DTransform(centred), inPlace=False)
        metric_before = probe.MetricEvaluate(fixed, moving)
        poses, found = _start_poses(fixed, moving, moving_mask, centred, settings, initial_transform)
        fits = []
        for pose in poses:  # every start pose refined to the end: the best final fit wins
            start = sitk.AffineTransform(pose.affine) if pose.affine is not None else _affine_from(pose.rigid)
            if pose.flipped:
                start = _then_mirror(start, moving)
            final, iterations, stop = _refine(fixed, pose, settings)
            if pose.flipped:
                final = _then_mirror(final, moving)
            if pose.deformation is not None:
                final = sitk.CompositeTransform([final, pose.deformation])  # x -> affine(deformation(x))
            metric, start_metric = (_metric_at(probe, t, fixed, moving) for t in (final, start))
            # the optimiser left a better start: keep the start; a clear loss (not noise of a flat optimum) is flagged
            kept = metric > start_metric + KEPT_START_TOLERANCE
            if metric > start_metric:
                final, metric, stop = start, start_metric, f"kept the start pose (refined: {metric:.4f}); {stop}"
            fits.append((metric, final, iterations, stop, pose, kept))
        metric_after, final, iterations, stop, pose, kept = min(fits, key=lambda f: f[0])
        margin = _margin(metric_after, math.degrees(pose.rigid.GetAngle()), pose.flipped,
                         [(f[0], math.degrees(f[4].rigid.GetAngle()), f[4].flipped) for f in fits])
        if len(fits) == 1 and found:  # every rival was clearly worse at the coarse level: the coarse margin
            margin = _margin(pose.coarse_metric, pose.coarse_angle, pose.flipped,
                             [(c.metric, c.coarse_angle, c.flipped) for c in found])
        orientation = float("nan")
        if not found and initial_transform is None and settings.orientation_check:
            orientation = _orientation_margin(fixed, moving, moving_mask, centred, final, settings)
    return RegistrationResult(
        transform=final, metric_before=float(metric_before), metric_after=float(metric_after),
        iterations=int(iterations), stop_condition=stop, runtime_s=time.perf_counter() - t0,
        initial_rotation_deg=float(pose.angle), flipped=bool(pose.flipped), pose_margin=margin,
        kept_start=bool(kept), orientation_margin=orientation,
    )


def _metric_at(probe: sitk.ImageRegistrationMethod, transform: sitk.Transform, fixed, moving) -> float:
    probe.SetInitialTransform(transform, inPlace=False)
    return float(probe.MetricEvaluate(fixed, moving))


def _orientation_margin(fixed, moving, moving_mask, centred, final, settings: OptimiserSettings) -> float:
    """Without a start-pose search: how much better (lower) the fit's metric is than that of the best clearly
    different orientation (start angles every 30 degrees, both mirror states), each after the short coarse fit
    the search uses. Negative: another orientation fits better, so the start pose was
    outside the optimiser's reach."""
    states = [(False, moving, moving_mask),
              (True, _mirror_x(moving), _mirror_x(moving_mask) if moving_mask is not None else None)]
    candidates = _search_candidates(fixed, centred, states, list(range(-180, 180, 30)), settings)
    affine = sitk.AffineTransform(next(c for c in reversed(components(final)) if c.GetName() != "BSplineTransform"))
    rigid = _nearest_rigid(affine)
    start = _start_model(settings, rigid, math.degrees(rigid.GetAngle()))
    if settings.transform != "rigid":
        start.SetScale(math.sqrt(abs(np.linalg.det(np.array(affine.GetMatrix()).reshape(2, 2)))))
    metric = _short_optimise(fixed, moving, moving_mask, start, settings)
    return _margin(metric, math.degrees(start.GetAngle()), False,
                   [(c.metric, c.angle, c.flipped) for c in candidates])


@dataclass
class _Pose:
    """A start pose: rigid start (and affine start from landmarks), mirror state, the images to use."""

    angle: float
    rigid: sitk.Euler2DTransform
    flipped: bool
    moving: sitk.Image
    mask: sitk.Image | None
    affine: sitk.AffineTransform | None = None
    deformation: sitk.Transform | None = None
    coarse_metric: float = float("nan")
    coarse_angle: float = float("nan")


def _start_poses(fixed, moving, moving_mask, centred, settings: OptimiserSettings, initial_transform):
    """The start poses to refine: the landmark transform, the single start angle, or the best
    ``settings.refine_candidates`` clearly different poses of each mirror state found by the search that lie
    within ``settings.refine_tolerance`` of the best coarse fit. Also returns every candidate of the search
    (empty without a search)."""
    if initial_transform is not None:
        start_affine = sitk.AffineTransform(initial_transform)
        flipped = bool(np.linalg.det(np.array(start_affine.GetMatrix()).reshape(2, 2)) < 0)
        mov, mask = moving, moving_mask
        if flipped:  # M o M = identity: the pose on the mirrored image is M o initial
            start_affine = _then_mirror(start_affine, moving)
            mov = _mirror_x(moving)
            mask = _mirror_x(moving_mask) if moving_mask is not None else None
        rigid = _nearest_rigid(start_affine)
        return [_Pose(math.degrees(rigid.GetAngle()), rigid, flipped, mov, mask, affine=start_affine)], []
    angles = list(settings.rotation_search_deg)
    if len(angles) == 1 and not settings.flip_search:
        rigid = sitk.Euler2DTransform(centred)
        rigid.SetAngle(math.radians(angles[0]))
        return [_Pose(angles[0], rigid, False, moving, moving_mask)], []
    states = [(False, moving, moving_mask)]
    if settings.flip_search:
        states.append((True, _mirror_x(moving), _mirror_x(moving_mask) if moving_mask is not None else None))
    found = _search_candidates(fixed, centred, states, angles, settings)
    best = min(c.metric for c in found)
    # a contender is refined only if its coarse fit is close to the best one: refining a clearly worse pose
    # (e.g. the wrong mirror state at +0.13 MI) costs a full optimisation and cannot win
    chosen = [c for c in _distinct_best(found, settings.refine_candidates) if c.metric <= best + settings.refine_tolerance]
    # the refinement starts from each fit's rotation and translation (its scale told the poses apart; an affine
    # stage started directly from it at the coarsest level can diverge)
    poses = [_Pose(c.start_angle, c.fit if isinstance(c.fit, sitk.Euler2DTransform)
                   else _nearest_rigid(_affine_from(c.fit)), c.flipped, c.moving, c.mask, coarse_metric=c.metric,
                   coarse_angle=c.coarse_angle) for c in chosen]
    return poses, found


def _refine(fixed, pose: _Pose, settings: OptimiserSettings):
    """Rigid, then affine (unless rigid), then the B-spline stage (stored on ``pose``), from ``pose``.

    Returns the affine part (on the possibly mirrored image), the iterations and the last stop condition.
    """
    linear = "rigid" if settings.transform == "rigid" else "affine"
    if pose.affine is not None and linear == "affine":
        stages = [("affine", pose.affine)]
    else:
        stages = [("rigid", pose.rigid)] + ([("affine", None)] if linear == "affine" else [])
    iterations, stop, rigid = 0, "", pose.rigid
    for name, tx in stages:
        if name == "affine" and tx is None:
            tx = _affine_from(rigid)
        r = _method(settings, moving_mask=pose.mask)
        # a start from the search's short fit or from landmarks is near its optimum: short first steps (a unit
        # first step threw an H&E start 0.5 px from the truth 17 px away, and the fit ended 41 px off); the
        # centred start of an edge without a search needs unit steps to reach it (with 0.25, MSI sections at
        # 14-18 degrees ended 2 px off instead of 0.4-0.7 px)
        near = pose.affine is not None or not math.isnan(pose.coarse_metric)
        _optimise_over_pyramid(r, settings, learning_rate=NEAR_START_LEARNING_RATE if near else 1.0)
        r.SetInitialTransform(tx, inPlace=True)
        r.Execute(fixed, pose.moving)
        iterations += r.GetOptimizerIteration()
        stop = r.GetOptimizerStopConditionDescription()
        if name == "rigid":
            rigid = tx
    final = tx if isinstance(tx, sitk.AffineTransform) else _affine_from(tx)
    if settings.transform == "bspline":
        pose.deformation, r = _bspline_stage(fixed, pose.moving, pose.mask, final, settings)
        iterations += r.GetOptimizerIteration()
        stop = r.GetOptimizerStopConditionDescription()
    return final, iterations, stop
