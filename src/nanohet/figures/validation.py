"""The demo validation figure: registration error and recovered versus true metrics."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .style import save  # noqa: E402


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
    for metric, sub in comparison.groupby("metric", sort=True):  # every analyte and region of a metric
        ax[1].scatter(sub["truth"], sub["recovered"], s=16, label=metric)
    lim = [0, max(comparison["truth"].max(), comparison["recovered"].max()) * 1.05] if len(comparison) else [0, 1]
    ax[1].plot(lim, lim, color="grey", lw=0.8)
    ax[1].set_xscale("symlog", linthresh=1)
    ax[1].set_yscale("symlog", linthresh=1)
    ax[1].set_xlabel("ground truth")
    ax[1].set_ylabel("recovered")
    ax[1].set_title("recovered metrics vs ground truth", fontsize=9)
    ax[1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    save(fig, path)
