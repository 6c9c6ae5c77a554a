"""The analysis grid over the reference section (nanohet.steps.quantify.analysis_grid)."""
from _adapter import run

run(snakemake, "quantify", "analysis_grid")  # noqa: F821
