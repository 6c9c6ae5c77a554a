"""Heterogeneity metrics of one section (nanohet.steps.quantify.section)."""
from _adapter import run

run(snakemake, "quantify", "section")  # noqa: F821
