"""Microscopy masks on the native MSI pixels (nanohet.steps.quantify.masks_on_msi)."""
from _adapter import run

run(snakemake, "quantify", "masks_on_msi")  # noqa: F821
