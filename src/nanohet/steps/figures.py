"""Steps of ``workflow/rules/figures.smk``: the per-sample overview and the cohort summary figure."""

from __future__ import annotations

import pandas as pd

from ..io.ometiff import read_ome_tiff
from . import one_input, read_section


def sample_figure(sample: str, fluorescence: str, masks: str, profiles: str, metrics: str,
                  channels_by_role: dict, out_figure: str, drug: str | None = None, pixel_size: float | None = None,
                  channels: str | None = None, registered: list[str] | str | None = None,
                  working_um: float | None = None) -> None:
    """Per-sample overview panel (see :func:`nanohet.figures.sample.sample_panel`); ``drug`` is the analyte
    with role drug (the TIC is shown without one); ``registered`` the MSI stack (none: a sample without MSI)."""
    from ..figures.sample import sample_panel

    registered = one_input(registered)
    sample_panel(out_figure, sample, read_section(fluorescence, pixel_size, channels, working_um), read_ome_tiff(masks),
                 read_ome_tiff(registered) if registered else None, pd.read_csv(profiles, sep="\t"),
                 pd.read_csv(metrics, sep="\t"), channels_by_role, drug)


def cohort_figure(cohort: str, out_figure: str, drug: str | None = None, out_figure_svg: str | None = None,
                  out_figure_pdf: str | None = None) -> None:
    """Cohort strip plots of the key heterogeneity metrics (see :func:`nanohet.figures.cohort.cohort_panels`), as
    PNG and, for a paper, as SVG and PDF."""
    from ..figures.cohort import cohort_panels, cohort_summary

    df = pd.read_csv(cohort, sep="\t")
    paths = [p for p in (out_figure, out_figure_svg, out_figure_pdf) if p]
    cohort_summary(paths, df, cohort_panels(drug, bool((df.modality == "volume").any())))
