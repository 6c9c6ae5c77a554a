"""The cohort summary figure (nanohet.steps.figures.cohort_figure)."""
from _adapter import run

run(snakemake, "figures", "cohort_figure")  # noqa: F821
