"""A volume (or mask) on the reference volume's grid (nanohet.steps.volume.volume_to_reference)."""
from _adapter import run

run(snakemake, "volume", "volume_to_reference")  # noqa: F821
