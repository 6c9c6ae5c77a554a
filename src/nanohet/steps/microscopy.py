"""Steps of ``workflow/rules/microscopy.smk``: masks and statistics of each fluorescence section."""

from __future__ import annotations

import logging

import pandas as pd

from ..atomic import write_table
from ..image import SectionImage
from ..io.ometiff import write_ome_tiff
from ..microscopy import MASK_CHANNELS, role_channel, section_masks, section_stats
from ..microscopy.autofluorescence import autofluorescence_levels, pooled_levels
from ..microscopy.masks import implausible_stats
from ..quantify.grid import AnalysisGrid
from ..settings import MicroscopySettings
from . import one_input, read_section

log = logging.getLogger("nanohet")


def preprocess(fluorescence: str, microscopy: dict | MicroscopySettings, out_masks: str, out_stats: str,
               pixel_size: float | None = None, channels: str | None = None, sample: str = "",
               spacing_um: float | None = None, out_grid: str | None = None) -> None:
    """Tissue, necrosis, viable and vessel masks of a fluorescence section, plus section statistics; with
    ``out_grid``, the analysis grid of ``spacing_um`` (``quantify.analysis_spacing_um``) over the masks' pixels,
    as JSON (:class:`nanohet.quantify.grid.AnalysisGrid`): the grid everything is mapped onto and measured on."""
    s = MicroscopySettings.coerce(microscopy)
    img = read_section(fluorescence, pixel_size, channels, s.working_pixel_um)
    p = float(img.spacing[0])
    if out_grid:
        grid = AnalysisGrid.over_extent(img.data.shape[1:], img.spacing, img.origin, float(spacing_um))
        grid.write(out_grid)
        log.info("analysis grid: %s pixels of %s µm (%d x %d mask pixels)", grid.shape, grid.spacing, grid.factor,
                 grid.factor)
    masks = section_masks(role_channel(img, s, "nuclei", fluorescence), role_channel(img, s, "vessels", fluorescence),
                          p, s.tissue_smooth_um, s.necrosis_smooth_um, s.vessel_min_area_um2)
    write_ome_tiff(out_masks, SectionImage(masks, list(MASK_CHANNELS), img.spacing, img.origin))
    stats = {"sample": sample, **section_stats(masks, p)}
    if not masks[3].any():
        log.warning("%s: no vessels found in channel %s", fluorescence, s.channel("vessels"))
    for problem in implausible_stats(stats, s.plausible):
        log.warning("%s (sample %s, channels %s): %s", fluorescence, sample, s.channels, problem)
    write_table(pd.DataFrame([stats]), out_stats)
    log.info("%s: tissue %.2f mm², necrotic fraction %.2f, %d vessels (%.0f /mm² viable)", fluorescence,
             stats["tissue_area_mm2"], stats["necrotic_fraction"], stats["vessel_count"],
             stats["vessel_density_per_mm2"])


def autofluorescence(controls: list[dict], microscopy: dict | MicroscopySettings, out_table: str) -> None:
    """The nanoparticle channel's autofluorescence of each unlabelled control section (sample-sheet rows
    ``fluorescence_control``: ``path``, optional ``pixel_size`` and ``channels``), per region, above its
    off-tissue background (:func:`nanohet.microscopy.autofluorescence.autofluorescence_levels`); the masks come
    from the same functions as every sample's. One row per control; the samples subtract their mean."""
    s = MicroscopySettings.coerce(microscopy)
    rows = []
    for rec in controls:
        path = rec["path"]
        img = read_section(path, rec.get("pixel_size"), rec.get("channels"), s.working_pixel_um)
        p = float(img.spacing[0])
        masks = section_masks(role_channel(img, s, "nuclei", path), role_channel(img, s, "vessels", path), p,
                              s.tissue_smooth_um, s.necrosis_smooth_um, s.vessel_min_area_um2)
        tissue, necrosis = masks[MASK_CHANNELS.index("tissue")] > 0, masks[MASK_CHANNELS.index("necrosis")] > 0
        levels = autofluorescence_levels(role_channel(img, s, "nanoparticle", path), tissue, necrosis,
                                         f"{path} (fluorescence_control)")
        rows.append({"path": path, "channel": s.channel("nanoparticle"), **levels})
        log.info("control %s: autofluorescence in %s %.1f counts (viable), %.1f (necrosis) above background", path,
                 s.channel("nanoparticle"), levels["viable"], levels["necrosis"])
    write_table(pd.DataFrame(rows), out_table)


def control_levels(autofluorescence: list[str] | str | None, sample: str = "") -> dict | None:
    """The autofluorescence to subtract from the nanoparticle channel: the controls' mean per region, or None
    without controls (:func:`nanohet.microscopy.autofluorescence.pooled_levels`)."""
    table = one_input(autofluorescence)
    if not table:
        return None
    levels = pooled_levels(pd.read_csv(table, sep="\t"))
    log.info("%s: nanoparticle autofluorescence from the controls subtracted: %.1f counts (viable), %.1f "
             "(necrosis)", sample, levels["viable"], levels["necrosis"])
    return levels
