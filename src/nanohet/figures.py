"""Figures: a panel per sample and cohort summaries (PNG, reproducible bytes)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .atomic import atomic_path  # noqa: E402
from .image import block_reduce_mean  # noqa: E402

# No timestamps or version strings in the files, so reruns give identical bytes.
_PNG_META = {"Software": None}


def _norm(a: np.ndarray, lo=1, hi=99.5) -> np.ndarray:
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return np.zeros_like(a)
    p0, p1 = np.percentile(finite, [lo, hi])
    return np.clip((np.nan_to_num(a, nan=p0) - p0) / (p1 - p0 if p1 > p0 else 1), 0, 1)


def _extent(shape, spacing, origin):
    """imshow extent in mm for an image with pixel centres at origin + i * spacing (µm)."""
    x0 = (origin[0] - spacing[0] / 2) / 1000
    y0 = (origin[1] - spacing[1] / 2) / 1000
    return [x0, x0 + shape[1] * spacing[0] / 1000, y0 + shape[0] * spacing[1] / 1000, y0]


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, metadata=_PNG_META)
    plt.close(fig)


def sample_panel(path, sample: str, fluo, masks, registered, profiles: pd.DataFrame,
                 metrics: pd.DataFrame, roles: dict, drug: str) -> None:
    """Six-panel overview of one sample.

    Parameters
    ----------
    path : path-like
        Output PNG.
    fluo, masks, registered : SectionImage
        Fluorescence section, its masks, and the MSI stack in the reference frame.
    profiles, metrics : DataFrame
        The sample's vessel-distance profiles and metrics tables.
    roles : dict
        Microscopy channel roles (config ``microscopy.channels``).
    drug : str
        Name of the MSI analyte shown.
    """
    f = max(1, int(round(8.0 / fluo.spacing[0])))
    def small(a):
        return block_reduce_mean(a.astype(np.float32), f)
    ext = _extent((fluo.shape_yx[0] // f, fluo.shape_yx[1] // f), (fluo.spacing[0] * f,) * 2, fluo.origin)
    rgb = np.dstack([_norm(small(fluo.channel(roles["vessels"]))), _norm(small(fluo.channel(roles["nanoparticle"]))),
                     _norm(small(fluo.channel(roles["nuclei"])))])
    tissue = small(masks.channel("tissue")) >= 0.5
    necrosis = small(masks.channel("necrosis")) >= 0.5
    reg_ext = _extent(registered.shape_yx, registered.spacing, registered.origin)

    fig, ax = plt.subplots(2, 3, figsize=(15, 9.5))
    ax[0, 0].imshow(rgb, extent=ext)
    ax[0, 0].set_title(f"fluorescence: {roles['vessels']} (red), {roles['nanoparticle']} (green), "
                       f"{roles['nuclei']} (blue)", fontsize=9)
    ax[0, 1].imshow(np.dstack([necrosis * 0.8, tissue * 0.6, small(masks.channel("vessels")) > 0.05]).astype(float),
                    extent=ext)
    ax[0, 1].set_title("masks: tissue (green), necrosis (yellow), vessels (blue)", fontsize=9)
    d = registered.channel(drug)
    im = ax[0, 2].imshow(np.where(np.isfinite(d), d, np.nan), extent=reg_ext, cmap="magma")
    ax[0, 2].contour(tissue, levels=[0.5], colors="c", linewidths=0.7, extent=ext, origin="upper")
    fig.colorbar(im, ax=ax[0, 2], shrink=0.8, label=str(metrics.loc[(metrics.analyte == drug) & (metrics.metric == "mean"), "unit"].iloc[0]))
    ax[0, 2].set_title(f"MSI {drug} in the reference frame (cyan: tissue)", fontsize=9)
    ax[1, 0].imshow(_norm(registered.channel("TIC")), extent=reg_ext, cmap="gray")
    ax[1, 0].contour(tissue, levels=[0.5], colors="r", linewidths=0.8, extent=ext, origin="upper")
    ax[1, 0].set_title("registered MSI TIC with fluorescence tissue outline (red)", fontsize=9)
    for a in (ax[0, 0], ax[0, 1], ax[0, 2], ax[1, 0]):
        a.set_xlabel("x (mm)")
        a.set_ylabel("y (mm)")
    for (modality, analyte), prof in profiles.groupby(["modality", "analyte"], sort=True):
        if analyte not in (drug, "nanoparticle"):
            continue
        first = prof["mean"].dropna()
        if first.empty or first.iloc[0] == 0:
            continue
        ax[1, 1].plot(prof["distance_um"], prof["mean"] / first.iloc[0], marker="o", ms=3,
                      label=f"{analyte} ({modality})")
    ax[1, 1].axhline(0.5, color="grey", lw=0.8, ls="--")
    ax[1, 1].set_xlabel("distance to nearest vessel (µm)")
    ax[1, 1].set_ylabel("mean intensity / first bin")
    ax[1, 1].set_title("vessel-distance profiles (viable tissue)", fontsize=9)
    ax[1, 1].legend(fontsize=8)
    ax[1, 2].axis("off")
    lines = [f"sample {sample}", ""]
    for (modality, analyte), sub in metrics.groupby(["modality", "analyte"], sort=True):
        vals = dict(zip(sub.metric, sub.value))
        if "mean" in vals:
            lines.append(f"{analyte} [{modality}]: mean {vals['mean']:.3g}, CV {vals['cv']:.2f}, "
                         f"L50 {vals.get('l50_um', np.nan):.0f} µm, coverage {vals.get('coverage', np.nan):.2f}")
    ax[1, 2].text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=8)
    fig.suptitle(f"nanohet: {sample}")
    fig.tight_layout()
    _save(fig, path)


def cohort_summary(path, cohort: pd.DataFrame, panels: list[tuple[str, str, str, str]]) -> None:
    """Strip plots of selected metrics per group (one dot per sample).

    Parameters
    ----------
    cohort : DataFrame
        The tidy cohort table.
    panels : list of (modality, analyte, metric, title)
    """
    n = len(panels)
    cols = 3
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.6 * rows), squeeze=False)
    groups = sorted(cohort["group"].dropna().unique())
    for a, (modality, analyte, metric, title) in zip(axes.ravel(), panels):
        sub = cohort[(cohort.modality == modality) & (cohort.analyte == analyte) & (cohort.metric == metric)]
        for gi, g in enumerate(groups):
            v = sub.loc[sub.group == g, "value"].to_numpy(dtype=float)
            x = gi + np.linspace(-0.12, 0.12, max(len(v), 1))[: len(v)]
            a.scatter(x, v, s=30, zorder=3)
            if len(v):
                a.hlines(np.nanmean(v), gi - 0.25, gi + 0.25, color="k", lw=1.5)
        a.set_xticks(range(len(groups)), groups, fontsize=8)
        unit = sub["unit"].iloc[0] if len(sub) else ""
        a.set_title(f"{title}", fontsize=9)
        a.set_ylabel(unit, fontsize=8)
    for a in axes.ravel()[n:]:
        a.axis("off")
    fig.suptitle("cohort summary (dot = sample, bar = group mean)")
    fig.tight_layout()
    _save(fig, path)


def validation_figure(path, tre: pd.DataFrame, comparison: pd.DataFrame) -> None:
    """Registration error per sample and recovered-vs-true metrics (demo validation)."""
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    dense = tre[tre.points == "dense_tissue_grid"].reset_index(drop=True)
    x = np.arange(len(dense))
    ax[0].bar(x - 0.2, dense["median_px"], 0.4, label="median")
    ax[0].bar(x + 0.2, dense["p95_px"], 0.4, label="95th percentile")
    ax[0].set_xticks(x, dense["sample"] + " " + dense["edge"].str.split("->").str[0], rotation=60, fontsize=7)
    ax[0].set_ylabel("TRE (pixels of the moving image)")
    ax[0].set_title("registration error vs ground truth (MSI px; H&E: microscopy px)", fontsize=9)
    ax[0].legend(fontsize=8)
    for key, sub in comparison.groupby(["analyte", "metric"], sort=True):
        ax[1].scatter(sub["truth"], sub["recovered"], s=20, label=f"{key[0]} {key[1]}")
    lim = [0, max(comparison["truth"].max(), comparison["recovered"].max()) * 1.05] if len(comparison) else [0, 1]
    ax[1].plot(lim, lim, color="grey", lw=0.8)
    ax[1].set_xscale("symlog", linthresh=1)
    ax[1].set_yscale("symlog", linthresh=1)
    ax[1].set_xlabel("ground truth")
    ax[1].set_ylabel("recovered")
    ax[1].set_title("recovered metrics vs ground truth", fontsize=9)
    ax[1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    _save(fig, path)


def _checkerboard(a: np.ndarray, b: np.ndarray, tiles: int = 8) -> np.ndarray:
    yy, xx = np.indices(a.shape)
    sel = ((yy * tiles // a.shape[0]) + (xx * tiles // a.shape[1])) % 2 == 0
    return np.where(sel, _norm(a), _norm(b))


def registration_qc(path, title: str, fixed: np.ndarray, before: np.ndarray, after: np.ndarray,
                    fixed_tissue: np.ndarray, extent, qc: dict) -> None:
    """Checkerboards and tissue-outline overlays of one registration edge, before and after.

    Parameters
    ----------
    fixed, before, after : ndarray (Y, X)
        Fixed image and the moving image resampled onto the fixed grid with the
        initial (centring) and the final transform.
    fixed_tissue : ndarray of bool
        Fixed tissue mask (its outline is drawn on the moving images).
    extent : list
        imshow extent in mm.
    qc : dict
        The edge's QC row (metric and Dice before/after, flag).
    """
    fig, ax = plt.subplots(2, 2, figsize=(10, 9.5))
    for col, (label, moving) in enumerate((("before (centring)", before), ("after", after))):
        ax[0, col].imshow(_checkerboard(fixed, moving), cmap="gray", extent=extent)
        ax[0, col].set_title(f"checkerboard fixed/moving, {label}", fontsize=9)
        ax[1, col].imshow(_norm(moving), cmap="magma", extent=extent)
        ax[1, col].contour(fixed_tissue, levels=[0.5], colors="c", linewidths=0.8, extent=extent, origin="upper")
        ax[1, col].set_title(f"moving with fixed tissue outline (cyan), {label}", fontsize=9)
        for a in ax[:, col]:
            a.set_xlabel("x (mm)")
            a.set_ylabel("y (mm)")
    flag = f"FLAGGED: {qc.get('flag_reason') or 'see the QC table'}" if qc.get("flagged") else "ok"
    fig.suptitle(f"{title}: MI {qc['metric_before']:.3f} -> {qc['metric_after']:.3f}, tissue Dice "
                 f"{qc['dice_before']:.3f} -> {qc['dice_after']:.3f} ({flag})", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
