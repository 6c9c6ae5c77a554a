"""Tissue autofluorescence in the nanoparticle channel, measured on unlabelled control sections.

Tissue fluoresces by itself (flavins, NAD(P)H, collagen, lipofuscin; more in necrotic tissue), so a
nanoparticle channel reads label + autofluorescence + background. The off-tissue background is removed per
section (:func:`~nanohet.microscopy.masks.background_level`); the autofluorescence is not visible there. It is
measured on control sections of tumours without the nanoparticle, imaged like the samples (the standard control
of nanoparticle imaging; Monici, Biotechnol Annu Rev 2005;11:227 on tissue autofluorescence), per region
(viable tissue and necrosis, whose autofluorescence differs), and subtracted from every sample. An offset left
in place lowers every dispersion measure (CV, Gini) of the nanoparticle and raises its coverage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from .masks import background_level

REGIONS = ("viable", "necrosis")


def autofluorescence_levels(channel: np.ndarray, tissue: np.ndarray, necrosis: np.ndarray,
                            where: str = "control section") -> dict:
    """Mean autofluorescence of an unlabelled section above its off-tissue background, per region.

    Parameters
    ----------
    channel : (Y, X) array
        The nanoparticle channel of a control section (no nanoparticle given).
    tissue, necrosis : (Y, X) bool arrays
        Its masks; viable tissue is tissue without necrosis.
    where : str
        Names the file in errors.

    Returns
    -------
    dict
        ``{"viable": level, "necrosis": level}`` (counts above background; NaN for a region without pixels) and
        ``n_viable``, ``n_necrosis`` (pixels).
    """
    values = np.asarray(channel, dtype=np.float64)
    if not tissue.any():
        raise InputError(f"{where}: the control section's tissue mask is empty")
    bg = background_level(values, tissue)
    out = {}
    for name, region in (("viable", tissue & ~necrosis), ("necrosis", tissue & necrosis)):
        v = values[region]
        out[name] = float(v.mean() - bg) if v.size else np.nan
        out[f"n_{name}"] = int(v.size)
    if not np.isfinite(out["viable"]):
        raise InputError(f"{where}: the control section has no viable tissue to measure autofluorescence in")
    return out


def pooled_levels(table: pd.DataFrame) -> dict:
    """The autofluorescence of every region averaged over the control sections (``table``: one row per control
    with ``viable`` and ``necrosis`` columns); a region no control has falls back to the viable level."""
    levels = {r: float(np.nanmean(table[r])) if table[r].notna().any() else np.nan for r in REGIONS}
    if not np.isfinite(levels["necrosis"]):
        levels["necrosis"] = levels["viable"]
    return levels


def subtract_autofluorescence(image: np.ndarray, levels: dict, tissue: np.ndarray,
                              necrosis: np.ndarray) -> np.ndarray:
    """``image`` (background-corrected) minus the region's autofluorescence level inside the tissue."""
    out = np.asarray(image, dtype=np.float64).copy()
    viable = tissue & ~necrosis
    out[viable] -= levels["viable"]
    out[tissue & necrosis] -= levels["necrosis"]
    return out
