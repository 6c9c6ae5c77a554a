"""Benchmark: nanohet's registration against a plain SimpleITK baseline on a 2000 x 2000 pair.

The fixed image is the nuclei (DAPI) channel of a phantom fluorescence section (2 µm/px); the moving
image shows the same section through a known transform (rotation, anisotropic scale, shear,
translation) plus a smooth non-linear deformation, with different contrast (a non-monotonic
intensity map, as between modalities) and noise. Both methods get the full-resolution pair and are
timed in the same run; TRE is measured on every 20th pixel inside the tissue against the true map.

* baseline: the SimpleITK notebooks' recipe: geometry-centred initial affine transform, Mattes MI
  (50 bins, 1 % random sampling), gradient descent (learning rate 1, 100 iterations, convergence
  window 10), physical-shift scales, shrink factors 4/2/1 with smoothing sigmas 2/1/0 (physical);
* baseline + search: the same recipe given the start search nanohet gets (12 start angles, 30° apart;
  the fit with the best final metric is kept), so that the comparison measures the registration and not
  the missing search;
* nanohet: ``nanohet.registration.register`` as the workflow uses it for a section edge: both images
  block-averaged to the 15 µm working spacing, moments centring, a 360° start-angle search (30° steps),
  rigid then affine, seeded sampling, single thread.

The best any affine model can do here is the displacement itself (about 6 µm median).

Usage: .venv/bin/python benchmarks/registration.py [--out registration.tsv]
"""

from __future__ import annotations

import math
import time

import numpy as np
import SimpleITK as sitk

from nanohet.image import block_origin, block_reduce_mean, to_sitk
from nanohet.demo.phantom import PhantomParams, render_fluorescence, simulate_section
from nanohet.registration import prepare_image, register, target_registration_error
from nanohet.settings import EdgeSettings

SPACING = 2.0


def moving_to_fixed(size_um: float, angle_deg: float = 23.0):
    """The true map S from moving to fixed coordinates: an affine, then a smooth displacement."""
    aff = sitk.AffineTransform(2)
    c = size_um / 2
    aff.SetCenter((c, c))
    th = math.radians(angle_deg)
    a = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]]) @ np.array([[1.04, 0.03], [0.0, 0.97]])
    aff.SetMatrix(tuple(a.ravel()))
    aff.SetTranslation((85.0, -60.0))
    n = 64
    yy, xx = np.mgrid[0:n, 0:n] * (size_um / (n - 1))
    disp = np.stack([6.0 * np.sin(2 * np.pi * yy / 1800), 6.0 * np.cos(2 * np.pi * xx / 2100)], axis=-1)
    field = sitk.GetImageFromArray(disp, isVector=True)
    field.SetSpacing((size_um / (n - 1),) * 2)
    dft = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
    return sitk.CompositeTransform([dft, aff])  # the last added (affine) is applied first


def make_pair(seed: int = 4, angle_deg: float = 23.0):
    params = PhantomParams(seed=seed, tumour_diameter_mm=3.0, margin_mm=0.2, microscopy_pixel_um=SPACING)
    truth = simulate_section(params)
    fl = render_fluorescence(truth, np.random.default_rng(seed))
    dapi = fl.channel("DAPI").astype(np.float64)[:2000, :2000]
    fixed = to_sitk(dapi, (SPACING, SPACING))
    s_map = moving_to_fixed(2000 * SPACING, angle_deg)
    warped = sitk.GetArrayFromImage(sitk.Resample(fixed, fixed, s_map, sitk.sitkLinear, 100.0))
    tissue_img = to_sitk(truth.tissue[:2000, :2000].astype(np.float32), (SPACING, SPACING))
    moving_tissue = sitk.GetArrayFromImage(sitk.Resample(tissue_img, tissue_img, s_map)) > 0.5
    norm = warped / np.percentile(warped, 99)
    rng = np.random.default_rng(seed + 1)
    moving_arr = np.sin(2.2 * norm) + 0.05 * rng.normal(size=norm.shape)  # non-monotonic contrast + noise
    return fixed, to_sitk(moving_arr, (SPACING, SPACING)), s_map, moving_tissue


def tre(transform, s_map, moving_tissue):
    """|T(S(p)) - p| over every 20th moving pixel in the tissue (T: fixed -> moving, S: moving -> fixed)."""
    ys, xs = np.nonzero(moving_tissue[::20, ::20])
    pts = (np.stack([xs, ys], axis=1) * 20 * SPACING).astype(float)
    fixed_pts = np.array([s_map.TransformPoint(tuple(p)) for p in pts])
    return target_registration_error(transform, fixed_pts, pts)


def baseline(fixed, moving, start_angle_deg: float = 0.0):
    """The notebook recipe; ``start_angle_deg`` rotates its geometry-centred start (0: the recipe as published)."""
    r = sitk.ImageRegistrationMethod()
    init = sitk.CenteredTransformInitializer(fixed, moving, sitk.AffineTransform(2),
                                             sitk.CenteredTransformInitializerFilter.GEOMETRY)
    th = math.radians(start_angle_deg)
    init.SetMatrix((math.cos(th), -math.sin(th), math.sin(th), math.cos(th)))
    r.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
    r.SetMetricSamplingStrategy(r.RANDOM)
    r.SetMetricSamplingPercentage(0.01)
    r.SetInterpolator(sitk.sitkLinear)
    r.SetOptimizerAsGradientDescent(learningRate=1.0, numberOfIterations=100, convergenceMinimumValue=1e-6,
                                    convergenceWindowSize=10)
    r.SetOptimizerScalesFromPhysicalShift()
    r.SetShrinkFactorsPerLevel([4, 2, 1])
    r.SetSmoothingSigmasPerLevel([2, 1, 0])
    r.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    r.SetInitialTransform(init, inPlace=False)
    return r.Execute(fixed, moving), r.GetMetricValue()


def baseline_with_search(fixed, moving):
    """The recipe given nanohet's start search: run from the same 12 start angles (30° steps), keep the fit
    with the best final metric."""
    fits = [baseline(fixed, moving, a) for a in range(-180, 180, 30)]
    return min(fits, key=lambda f: f[1])[0]


def nanohet_register(fixed, moving, transform: str = "affine"):
    f = max(int(round(15.0 / SPACING)), 1)
    spacing = (SPACING * f,) * 2
    origin = block_origin((0.0, 0.0), (SPACING, SPACING), f)
    fx = prepare_image(block_reduce_mean(sitk.GetArrayFromImage(fixed), f), spacing, origin)
    mv = prepare_image(block_reduce_mean(sitk.GetArrayFromImage(moving), f), spacing, origin)
    settings = EdgeSettings(transform=transform, rotation_search_deg=tuple(range(-180, 180, 30))).optimiser()
    return register(fx, mv, settings).transform


def main(argv=None):
    import argparse
    from pathlib import Path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="also write the figures to this TSV (docs: "
                    "tools/validation_doc.py --registration-bench)")
    args = ap.parse_args(argv)
    rows = []
    for angle in (5.0, 23.0):
        fixed, moving, s_map, moving_tissue = make_pair(angle_deg=angle)
        print(f"\npair: {fixed.GetSize()} px at {SPACING} µm; true map: {angle:.0f}° rotation, scale/shear, "
              "translation and a smooth displacement (up to 6 µm); non-monotonic contrast")
        rows += [{"angle_deg": angle, **r} for r in run_pair(fixed, moving, s_map, moving_tissue)]
    if args.out:
        from _out import write_rows  # benchmarks/_out.py (the script's folder is on the path)

        write_rows(rows, args.out)


def run_pair(fixed, moving, s_map, moving_tissue) -> list[dict]:
    rows = []
    for name, fn in (("SimpleITK baseline", lambda f, m: baseline(f, m)[0]),
                     ("SimpleITK + search", baseline_with_search), ("nanohet", nanohet_register),
                     ("nanohet + B-spline", lambda f, m: nanohet_register(f, m, "bspline"))):
        t = time.perf_counter()
        result = fn(fixed, moving)
        elapsed = time.perf_counter() - t
        e = tre(result, s_map, moving_tissue)
        print(f"{name:20s}: {elapsed:6.1f} s   TRE median {np.median(e):7.2f} µm ({np.median(e) / SPACING:6.2f} px), "
              f"95th percentile {np.percentile(e, 95):7.2f} µm")
        rows.append({"method": name, "seconds": elapsed, "tre_median_um": float(np.median(e)),
                     "tre_p95_um": float(np.percentile(e, 95))})
    return rows


if __name__ == "__main__":
    main()
