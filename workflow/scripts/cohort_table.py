"""The cohort tables (nanohet.steps.quantify.cohort)."""
from _adapter import run

run(snakemake, "quantify", "cohort")  # noqa: F821
