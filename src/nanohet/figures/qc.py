"""The registration QC figure of one edge: checkerboards and outlines before and after."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .style import checkerboard, norm, save  # noqa: E402


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
        ax[0, col].imshow(checkerboard(fixed, moving), cmap="gray", extent=extent)
        ax[0, col].set_title(f"checkerboard fixed/moving, {label}", fontsize=9)
        ax[1, col].imshow(norm(moving), cmap="magma", extent=extent)
        ax[1, col].contour(fixed_tissue, levels=[0.5], colors="c", linewidths=0.8, extent=extent, origin="upper")
        ax[1, col].set_title(f"moving with fixed tissue outline (cyan), {label}", fontsize=9)
        for a in ax[:, col]:
            a.set_xlabel("x (mm)")
            a.set_ylabel("y (mm)")
    flag = f"FLAGGED: {qc.get('flag_reason') or 'see the QC table'}" if qc.get("flagged") else "ok"
    fig.suptitle(f"{title}: MI {qc['metric_before']:.3f} -> {qc['metric_after']:.3f}, tissue Dice "
                 f"{qc['dice_before']:.3f} -> {qc['dice_after']:.3f} ({flag})", fontsize=10)
    fig.tight_layout()
    save(fig, path)
