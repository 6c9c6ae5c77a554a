"""Shared figure helpers: intensity scaling, physical extents, reproducible PNG, SVG and PDF output."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..atomic import atomic_path  # noqa: E402

# No timestamps, version strings or random ids in the files, so reruns give identical bytes.
_METADATA = {".png": {"Software": None}, ".svg": {"Date": None, "Creator": None},
             ".pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}}


def norm(a: np.ndarray, lo=1, hi=99.5) -> np.ndarray:
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return np.zeros_like(a)
    p0, p1 = np.percentile(finite, [lo, hi])
    return np.clip((np.nan_to_num(a, nan=p0) - p0) / (p1 - p0 if p1 > p0 else 1), 0, 1)


def extent(shape, spacing, origin):
    """imshow extent in mm for an image with pixel centres at origin + i * spacing (µm)."""
    x0 = (origin[0] - spacing[0] / 2) / 1000
    y0 = (origin[1] - spacing[1] / 2) / 1000
    return [x0, x0 + shape[1] * spacing[0] / 1000, y0 + shape[0] * spacing[1] / 1000, y0]


def save(fig, *paths):
    """Write ``fig`` to each path (PNG, SVG or PDF, by suffix) atomically and close it. The files carry no date,
    software version or random id (SVG element ids are salted with a constant), so a rerun writes the same
    bytes."""
    for path in paths:
        suffix = Path(path).suffix.lower()
        if suffix not in _METADATA:
            raise ValueError(f"{path}: figures are written as .png, .svg or .pdf")
        with atomic_path(path) as tmp, matplotlib.rc_context({"svg.hashsalt": "nanohet", "pdf.compression": 6}):
            fig.savefig(tmp, dpi=110, metadata=_METADATA[suffix])
    plt.close(fig)


def checkerboard(a: np.ndarray, b: np.ndarray, tiles: int = 8) -> np.ndarray:
    yy, xx = np.indices(a.shape)
    sel = ((yy * tiles // a.shape[0]) + (xx * tiles // a.shape[1])) % 2 == 0
    return np.where(sel, norm(a), norm(b))
