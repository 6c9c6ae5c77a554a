"""Autofluorescence of the unlabelled control sections (nanohet.steps.microscopy.autofluorescence)."""
from _adapter import run

run(snakemake, "microscopy", "autofluorescence")  # noqa: F821
