"""The per-sample overview figure (nanohet.steps.figures.sample_figure)."""
from _adapter import run

run(snakemake, "figures", "sample_figure")  # noqa: F821
