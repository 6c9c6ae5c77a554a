"""The per-sample overview figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..image import block_reduce_mean  # noqa: E402
from .style import extent, norm, save  # noqa: E402


def sample_panel(path, sample: str, fluo, masks, registered, profiles: pd.DataFrame,
                 metrics: pd.DataFrame, roles: dict, drug: str | None) -> None:
    """Six-panel overview of one sample.

    Parameters
    ----------
    path : path-like
        Output PNG.
    fluo, masks, registered : SectionImage
        Fluorescence section, its masks, and the MSI stack in the reference frame (None: no MSI).
    profiles, metrics : DataFrame
        The sample's vessel-distance profiles and metrics tables.
    roles : dict
        Microscopy channel roles (config ``microscopy.channels``).
    drug : str or None
        Name of the MSI analyte shown (the analyte with role drug); None shows the TIC.
    """
    f = max(1, int(round(8.0 / fluo.spacing[0])))
    def small(a):
        return block_reduce_mean(a.astype(np.float32), f)
    ext = extent((fluo.shape_yx[0] // f, fluo.shape_yx[1] // f), (fluo.spacing[0] * f,) * 2, fluo.origin)
    rgb = np.dstack([norm(small(fluo.channel(roles["vessels"]))), norm(small(fluo.channel(roles["nanoparticle"]))),
                     norm(small(fluo.channel(roles["nuclei"])))])
    tissue = small(masks.channel("tissue")) >= 0.5
    necrosis = small(masks.channel("necrosis")) >= 0.5

    fig, ax = plt.subplots(2, 3, figsize=(15, 9.5))
    ax[0, 0].imshow(rgb, extent=ext)
    ax[0, 0].set_title(f"fluorescence: {roles['vessels']} (red), {roles['nanoparticle']} (green), "
                       f"{roles['nuclei']} (blue)", fontsize=9)
    ax[0, 1].imshow(np.dstack([necrosis * 0.8, tissue * 0.6, small(masks.channel("vessels")) > 0.05]).astype(float),
                    extent=ext)
    ax[0, 1].set_title("masks: tissue (green), necrosis (yellow), vessels (blue)", fontsize=9)
    if registered is not None:
        reg_ext = extent(registered.shape_yx, registered.spacing, registered.origin)
        shown = drug if drug is not None else "TIC"
        d = registered.channel(shown)
        im = ax[0, 2].imshow(np.where(np.isfinite(d), d, np.nan), extent=reg_ext, cmap="magma")
        ax[0, 2].contour(tissue, levels=[0.5], colors="c", linewidths=0.7, extent=ext, origin="upper")
        unit = metrics.loc[(metrics.analyte == shown) & (metrics.metric == "mean") & (metrics.region == "tissue"),
                           "unit"]
        fig.colorbar(im, ax=ax[0, 2], shrink=0.8, label=str(unit.iloc[0]) if len(unit) else "counts")
        ax[0, 2].set_title(f"MSI {shown} in the reference frame (cyan: tissue)", fontsize=9)
        ax[1, 0].imshow(norm(registered.channel("TIC")), extent=reg_ext, cmap="gray")
        ax[1, 0].contour(tissue, levels=[0.5], colors="r", linewidths=0.8, extent=ext, origin="upper")
        ax[1, 0].set_title("registered MSI TIC with fluorescence tissue outline (red)", fontsize=9)
    else:  # a sample without MSI
        for a in (ax[0, 2], ax[1, 0]):
            a.text(0.5, 0.5, "no MSI for this sample", ha="center", va="center", transform=a.transAxes)
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
    tissue_rows = metrics[(metrics.region == "tissue") | metrics.metric.isin(["l50_um"])]
    for (modality, analyte), sub in tissue_rows.groupby(["modality", "analyte"], sort=True):
        vals = dict(zip(sub.metric, sub.value))
        if "mean" in vals:
            lines.append(f"{analyte} [{modality}]: mean {vals['mean']:.3g}, CV {vals['cv']:.2f}, "
                         f"L50 {vals.get('l50_um', np.nan):.0f} µm, coverage {vals.get('coverage', np.nan):.2f}")
    ax[1, 2].text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=8)
    fig.suptitle(f"nanohet: {sample}")
    fig.tight_layout()
    save(fig, path)
