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
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from .image import to_sitk


@dataclass
class RegistrationSettings:
    """Settings of :func:`register` (lengths in the images' physical unit).

    Attributes
    ----------
    transform : {"rigid", "affine", "bspline"}
        Final transform model; ``bspline`` is rigid, then affine, then a
        B-spline deformation composed after the affine map.
    histogram_bins : int
        Mattes MI histogram bins.
    sampling_percentage : float
        Fraction of fixed-image pixels sampled per iteration (random, seeded).
    seed : int
        Sampling seed.
    shrink_factors : list of int
        Multi-resolution pyramid, coarsest first.
    smoothing_sigmas : list of float
        Gaussian smoothing per level in physical units.
    iterations : int
        Maximum iterations per stage and level.
    rotation_search_deg : list of float
        Initial rotations (degrees) tried before optimisation; the best by
        metric value is kept. ``[0]`` disables the search.
    flip_search : bool
        Also try every rotation with the moving image mirrored (sections can
        be mounted face down); a chosen mirror is part of the final transform.
    centring : {"moments", "geometry"}
        Start translation: centres of mass of the intensities (moments) or
        centres of the image grids (geometry, for images whose intensity
        distributions differ too much to compare).
    search_candidates : int
        Start angles (per mirror state), best first by the metric on smoothed
        images, that get a short coarse optimisation; the best optimised one
        wins. Near-round sections rank the true angle low at the start, so
        more candidates make the search robust at a small cost.
    threads : int
        Threads of the registration (1 gives bit-identical reruns).
    bspline_grid_spacing : float
        Control-point spacing of the B-spline stage (physical units). A
        coarse grid is the regularisation: deformations shorter than about
        this length cannot be modelled.
    bspline_iterations : int
        L-BFGS-B iterations per level of the B-spline stage (the last two
        pyramid levels).
    """

    transform: str = "affine"
    histogram_bins: int = 32
    sampling_percentage: float = 0.5
    seed: int = 20260101
    shrink_factors: list = field(default_factory=lambda: [4, 2, 1])
    smoothing_sigmas: list = field(default_factory=lambda: [60.0, 30.0, 0.0])
    iterations: int = 300
    rotation_search_deg: list = field(default_factory=lambda: [0.0])
    flip_search: bool = False
    search_candidates: int = 6
    centring: str = "moments"
    threads: int = 1
    bspline_grid_spacing: float = 500.0
    bspline_iterations: int = 100


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


def prepare_image(array: np.ndarray, spacing, origin, fill: float | None = None) -> sitk.Image:
    """Robustly rescale a 2-D array to [0, 1] (1st-99th percentile) as a SimpleITK image.

    NaN pixels (not acquired) are set to ``fill`` (default: the 5th
    percentile, i.e. background).
    """
    a = np.asarray(array, dtype=np.float64)
    finite = np.isfinite(a)
    if not finite.any():
        raise ValueError("image has no finite pixel")
    lo, hi = np.percentile(a[finite], [1, 99])
    a = np.where(finite, a, np.percentile(a[finite], 5) if fill is None else fill)
    a = np.clip((a - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    return to_sitk(a, spacing, origin)


def _centring(settings: RegistrationSettings):
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


def _method(settings: RegistrationSettings, fixed_mask=None, moving_mask=None) -> sitk.ImageRegistrationMethod:
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


def _optimise_over_pyramid(r: sitk.ImageRegistrationMethod, settings: RegistrationSettings) -> None:
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
                   settings: RegistrationSettings):
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


def register(fixed: sitk.Image, moving: sitk.Image, settings: RegistrationSettings | None = None,
             moving_mask: sitk.Image | None = None,
             initial_transform: sitk.AffineTransform | None = None) -> RegistrationResult:
    """Register ``moving`` onto ``fixed``.

    Parameters
    ----------
    fixed, moving : sitk.Image
        2-D float images with physical spacing and origin (see
        :func:`prepare_image`).
    settings : RegistrationSettings, optional
    moving_mask : sitk.Image, optional
        uint8 mask of valid moving pixels (for MSI: the acquired pixels).
    initial_transform : sitk.AffineTransform, optional
        Start pose (fixed -> moving), for example from landmarks
        (:func:`nanohet.landmarks.landmark_transform`). It replaces the
        centring and the rotation/mirror search; a negative determinant
        (a mirrored section) is handled by mirroring the moving image. The
        affine model starts from it directly; the rigid model from its
        nearest rotation. ``metric_before`` is measured at this pose.

    Returns
    -------
    RegistrationResult
        ``transform`` maps fixed-frame points to the moving frame.
    """
    settings = settings or RegistrationSettings()
    if settings.transform not in ("rigid", "affine", "bspline"):
        raise ValueError(f"transform must be rigid, affine or bspline, got {settings.transform!r}")
    t0 = time.perf_counter()
    with _itk_threads(settings.threads):
        centred = sitk.CenteredTransformInitializer(
            fixed, moving, sitk.Euler2DTransform(), _centring(settings))
        centred = sitk.Euler2DTransform(centred)
        probe = _method(settings, moving_mask=moving_mask)
        probe.SetInitialTransform(initial_transform if initial_transform is not None
                                  else sitk.Euler2DTransform(centred), inPlace=False)
        metric_before = probe.MetricEvaluate(fixed, moving)
        candidates = [(False, moving, moving_mask)]
        if settings.flip_search:
            candidates.append((True, _mirror_x(moving),
                               _mirror_x(moving_mask) if moving_mask is not None else None))
        angles = list(settings.rotation_search_deg)
        start_affine = None
        pose_margin = float("nan")  # no search: no competing pose
        if initial_transform is not None:
            start_affine = sitk.AffineTransform(initial_transform)
            flipped = bool(np.linalg.det(np.array(start_affine.GetMatrix()).reshape(2, 2)) < 0)
            mov, mask = candidates[0][1:]
            if flipped:  # M o M = identity: the pose on the mirrored image is M o initial
                start_affine = _then_mirror(start_affine, moving)
                mov = _mirror_x(moving)
                mask = _mirror_x(moving_mask) if moving_mask is not None else None
            rigid = _nearest_rigid(start_affine)
            angle0 = math.degrees(rigid.GetAngle())
        elif len(angles) == 1 and not settings.flip_search:
            rigid = sitk.Euler2DTransform(centred)
            rigid.SetAngle(math.radians(angles[0]))
            angle0, flipped, mov, mask = angles[0], False, moving, moving_mask
        else:
            angle0, rigid, flipped, mov, mask, pose_margin = _search_start(fixed, centred, candidates, angles,
                                                                           settings)

        linear = "rigid" if settings.transform == "rigid" else "affine"
        if start_affine is not None and linear == "affine":
            stages = [("affine", start_affine)]
        else:
            stages = [("rigid", rigid)]
            if linear == "affine":
                stages.append(("affine", None))
        iterations, stop = 0, ""
        for name, tx in stages:
            if name == "affine" and tx is None:
                tx = _affine_from_euler(rigid)
            r = _method(settings, moving_mask=mask)
            _optimise_over_pyramid(r, settings)
            r.SetInitialTransform(tx, inPlace=True)
            r.Execute(fixed, mov)
            iterations += r.GetOptimizerIteration()
            stop = r.GetOptimizerStopConditionDescription()
            if name == "rigid":
                rigid = tx
        final = tx if isinstance(tx, sitk.AffineTransform) else _affine_from_euler(tx)
        deformation = None
        if settings.transform == "bspline":
            deformation, r = _bspline_stage(fixed, mov, mask, final, settings)
            iterations += r.GetOptimizerIteration()
            stop = r.GetOptimizerStopConditionDescription()
        if flipped:
            final = _then_mirror(final, moving)
        if deformation is not None:
            final = sitk.CompositeTransform([final, deformation])  # x -> affine(deformation(x))
        probe.SetInitialTransform(final, inPlace=False)
        metric_after = probe.MetricEvaluate(fixed, moving)
    return RegistrationResult(
        transform=final, metric_before=float(metric_before), metric_after=float(metric_after),
        iterations=int(iterations), stop_condition=stop, runtime_s=time.perf_counter() - t0,
        initial_rotation_deg=float(angle0), flipped=bool(flipped), pose_margin=pose_margin,
    )


def register_rigid_3d(fixed: sitk.Image, moving: sitk.Image, settings: RegistrationSettings | None = None,
                      fixed_mask: sitk.Image | None = None) -> RegistrationResult:
    """Rigid 3-D registration of two volumes (mm) with Mattes mutual information.

    Geometry centring, then a versor rigid transform optimised over the
    multi-resolution pyramid of ``settings`` (smoothing sigmas in mm), with
    seeded sampling and the thread count of ``settings`` (bit-identical
    reruns with one thread). The transform maps fixed points to the moving
    volume, as for sections.
    """
    settings = settings or RegistrationSettings(transform="rigid", smoothing_sigmas=[4.0, 2.0, 0.0],
                                                histogram_bins=64, sampling_percentage=1.0)
    t0 = time.perf_counter()
    fixed = sitk.Cast(fixed, sitk.sitkFloat32)
    moving = sitk.Cast(moving, sitk.sitkFloat32)
    with _itk_threads(settings.threads):
        tx = sitk.CenteredTransformInitializer(fixed, moving, sitk.VersorRigid3DTransform(),
                                               sitk.CenteredTransformInitializerFilter.GEOMETRY)
        tx = sitk.VersorRigid3DTransform(tx)
        r = _method(settings, fixed_mask=fixed_mask)
        r.SetInitialTransform(tx, inPlace=False)
        before = r.MetricEvaluate(fixed, moving)
        _optimise_over_pyramid(r, settings)
        r.SetInitialTransform(tx, inPlace=True)
        r.Execute(fixed, moving)
        probe = _method(settings, fixed_mask=fixed_mask)
        probe.SetInitialTransform(tx, inPlace=False)
        after = probe.MetricEvaluate(fixed, moving)
    return RegistrationResult(transform=tx, metric_before=float(before), metric_after=float(after),
                              iterations=int(r.GetOptimizerIteration()),
                              stop_condition=r.GetOptimizerStopConditionDescription(),
                              runtime_s=time.perf_counter() - t0, initial_rotation_deg=0.0)


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
    from .reggraph import components

    parts = [p for p in components(transform) if p.GetName() == "BSplineTransform"]
    if not parts:
        return {"deformation_max": float("nan"), "jacobian_min": float("nan")}
    field = sitk.TransformToDisplacementField(parts[0], sitk.sitkVectorFloat64, grid.GetSize(), grid.GetOrigin(),
                                              grid.GetSpacing(), grid.GetDirection())
    disp = sitk.GetArrayFromImage(field)
    jac = sitk.GetArrayFromImage(sitk.DisplacementFieldJacobianDeterminant(field))
    return {"deformation_max": float(np.sqrt((disp ** 2).sum(-1)).max()), "jacobian_min": float(jac.min())}


def resample_to(moving: sitk.Image, reference: sitk.Image, transform: sitk.Transform,
                interpolator=sitk.sitkLinear, default: float = float("nan")) -> np.ndarray:
    """Resample ``moving`` onto the grid of ``reference`` through ``transform``.

    Pixels that map outside the moving image (or onto NaN) get ``default``.
    """
    out = sitk.Resample(moving, reference, transform, interpolator, default, sitk.sitkFloat64)
    return sitk.GetArrayFromImage(out)


def reference_grid(shape_yx, spacing, origin) -> sitk.Image:
    """An empty SimpleITK image describing a 2-D grid (for resampling)."""
    ref = sitk.Image(int(shape_yx[1]), int(shape_yx[0]), sitk.sitkFloat32)
    ref.SetSpacing(tuple(float(s) for s in spacing))
    ref.SetOrigin(tuple(float(o) for o in origin))
    return ref


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
