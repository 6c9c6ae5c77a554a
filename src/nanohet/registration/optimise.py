"""Multimodal 2-D registration with SimpleITK (Mattes mutual information).

Convention: a registration transform maps points of the *fixed* (reference)
frame to the *moving* frame, as ITK's resampling expects, in physical units
(µm for sections).

Method: moments-based centring, an optional coarse rotation search, then a
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

RegistrationSettings = OptimiserSettings  # the optimiser's parameters (see nanohet.settings)


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
    """Metric advantage of the chosen start pose over the best clearly different one (search only)."""


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


def _optimise_over_pyramid(r: sitk.ImageRegistrationMethod, settings: OptimiserSettings) -> None:
    """Regular-step gradient descent with physical-shift scales over the settings' pyramid."""
    r.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-4, numberOfIterations=settings.iterations,
        relaxationFactor=0.6, gradientMagnitudeTolerance=1e-8)
    r.SetOptimizerScalesFromPhysicalShift()
    r.SetShrinkFactorsPerLevel(list(settings.shrink_factors))
    r.SetSmoothingSigmasPerLevel(list(settings.smoothing_sigmas))
    r.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()


def _affine_from_euler(euler: sitk.Euler2DTransform) -> sitk.AffineTransform:
    aff = sitk.AffineTransform(2)
    aff.SetMatrix(euler.GetMatrix())
    aff.SetTranslation(euler.GetTranslation())
    aff.SetCenter(euler.GetCenter())
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


def _search_start(fixed, centred, candidates, angles, settings):
    """Best start pose over mirror states and start angles.

    Start angles are ranked on images smoothed like the coarsest pyramid
    level; the ``settings.search_candidates`` best of each mirror state get a
    short coarse rigid optimisation and the best optimised metric wins (at its start pose a
    mirror can look like a rotation; after optimisation it does not).
    """
    sigma = float(settings.smoothing_sigmas[0]) if settings.smoothing_sigmas else 0.0

    def smooth(img):
        return sitk.SmoothingRecursiveGaussian(img, sigma) if sigma > 0 else img

    smooth_fixed = smooth(fixed)
    best = None
    optimised = []  # (metric, angle after the short optimisation, mirrored)
    for flipped, mov, mask in candidates:
        if flipped:  # a mirrored image has its own centre of mass
            centred = sitk.Euler2DTransform(sitk.CenteredTransformInitializer(
                fixed, mov, sitk.Euler2DTransform(), _centring(settings)))
        probe = _method(settings, moving_mask=mask)
        smooth_mov = smooth(mov)
        ranked = []
        for angle in angles:
            trial = sitk.Euler2DTransform(centred)
            trial.SetAngle(math.radians(angle))
            probe.SetInitialTransform(trial, inPlace=False)
            ranked.append((probe.MetricEvaluate(smooth_fixed, smooth_mov), angle))
        for _, angle in sorted(ranked)[:settings.search_candidates]:
            trial = sitk.Euler2DTransform(centred)
            trial.SetAngle(math.radians(angle))
            r = _method(settings, moving_mask=mask)
            r.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-3, numberOfIterations=60)
            r.SetOptimizerScalesFromPhysicalShift()
            r.SetShrinkFactorsPerLevel([settings.shrink_factors[0]])
            r.SetSmoothingSigmasPerLevel([sigma])
            r.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
            r.SetInitialTransform(trial, inPlace=True)
            r.Execute(fixed, mov)
            optimised.append((r.GetMetricValue(), math.degrees(trial.GetAngle()), flipped))
            if best is None or r.GetMetricValue() < best[0]:
                best = (r.GetMetricValue(), angle, trial, flipped, mov, mask)
    return (*best[1:], _pose_margin(optimised, best[0]))


def _pose_margin(optimised, best_metric: float, min_angle_deg: float = 10.0) -> float:
    """How much better (lower) the winning pose's metric is than the best clearly different pose.

    Clearly different: the other mirror state, or a rotation more than
    ``min_angle_deg`` away. NaN when every candidate converged to the winner.
    A margin near zero means two different orientations fit equally well.
    """
    win = min(optimised)
    others = [m for m, angle, flipped in optimised
              if flipped != win[2] or abs((angle - win[1] + 180.0) % 360.0 - 180.0) > min_angle_deg]
    return float(min(others) - best_metric) if others else float("nan")


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
        pose = _start_pose(fixed, moving, moving_mask, centred, settings, initial_transform)
        final, iterations, stop = _refine(fixed, pose, settings)
        if pose.flipped:
            final = _then_mirror(final, moving)
        if pose.deformation is not None:
            final = sitk.CompositeTransform([final, pose.deformation])  # x -> affine(deformation(x))
        probe.SetInitialTransform(final, inPlace=False)
        metric_after = probe.MetricEvaluate(fixed, moving)
    return RegistrationResult(
        transform=final, metric_before=float(metric_before), metric_after=float(metric_after),
        iterations=int(iterations), stop_condition=stop, runtime_s=time.perf_counter() - t0,
        initial_rotation_deg=float(pose.angle), flipped=bool(pose.flipped), pose_margin=pose.margin,
    )


@dataclass
class _Pose:
    """A start pose: rigid start (and affine start from landmarks), mirror state, the images to use."""

    angle: float
    rigid: sitk.Euler2DTransform
    flipped: bool
    moving: sitk.Image
    mask: sitk.Image | None
    margin: float = float("nan")  # no search: no competing pose
    affine: sitk.AffineTransform | None = None
    deformation: sitk.Transform | None = None


def _start_pose(fixed, moving, moving_mask, centred, settings: OptimiserSettings, initial_transform) -> _Pose:
    """The start pose: from the landmark transform, the single start angle, or the rotation/mirror search."""
    if initial_transform is not None:
        start_affine = sitk.AffineTransform(initial_transform)
        flipped = bool(np.linalg.det(np.array(start_affine.GetMatrix()).reshape(2, 2)) < 0)
        mov, mask = moving, moving_mask
        if flipped:  # M o M = identity: the pose on the mirrored image is M o initial
            start_affine = _then_mirror(start_affine, moving)
            mov = _mirror_x(moving)
            mask = _mirror_x(moving_mask) if moving_mask is not None else None
        rigid = _nearest_rigid(start_affine)
        return _Pose(math.degrees(rigid.GetAngle()), rigid, flipped, mov, mask, affine=start_affine)
    angles = list(settings.rotation_search_deg)
    if len(angles) == 1 and not settings.flip_search:
        rigid = sitk.Euler2DTransform(centred)
        rigid.SetAngle(math.radians(angles[0]))
        return _Pose(angles[0], rigid, False, moving, moving_mask)
    candidates = [(False, moving, moving_mask)]
    if settings.flip_search:
        candidates.append((True, _mirror_x(moving), _mirror_x(moving_mask) if moving_mask is not None else None))
    angle0, rigid, flipped, mov, mask, margin = _search_start(fixed, centred, candidates, angles, settings)
    return _Pose(angle0, rigid, flipped, mov, mask, margin)


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
            tx = _affine_from_euler(rigid)
        r = _method(settings, moving_mask=pose.mask)
        _optimise_over_pyramid(r, settings)
        r.SetInitialTransform(tx, inPlace=True)
        r.Execute(fixed, pose.moving)
        iterations += r.GetOptimizerIteration()
        stop = r.GetOptimizerStopConditionDescription()
        if name == "rigid":
            rigid = tx
    final = tx if isinstance(tx, sitk.AffineTransform) else _affine_from_euler(tx)
    if settings.transform == "bspline":
        pose.deformation, r = _bspline_stage(fixed, pose.moving, pose.mask, final, settings)
        iterations += r.GetOptimizerIteration()
        stop = r.GetOptimizerStopConditionDescription()
    return final, iterations, stop
