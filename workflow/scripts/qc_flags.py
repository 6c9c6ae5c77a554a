"""The run's table of QC flags (nanohet.steps.qc.qc_flags)."""
from _adapter import run

run(snakemake, "qc", "qc_flags")  # noqa: F821
