"""Masks and statistics of a fluorescence section (nanohet.steps.microscopy.preprocess)."""
from _adapter import run

run(snakemake, "microscopy", "preprocess")  # noqa: F821
