"""Validate one demo sample against its truth (nanohet.steps.demo.validate_sample)."""
from _adapter import run

run(snakemake, "demo", "validate_sample")  # noqa: F821
