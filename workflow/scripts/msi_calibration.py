"""Calibration curves from the sample sheet's standards (nanohet.steps.msi.calibrate)."""
from _adapter import run

run(snakemake, "msi", "calibrate")  # noqa: F821
