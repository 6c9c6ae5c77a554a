"""Heterogeneity metrics of an MSI-only sample on its native pixels (nanohet.steps.quantify.msi_section)."""
from _adapter import run

run(snakemake, "quantify", "msi_section")  # noqa: F821
