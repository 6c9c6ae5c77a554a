"""A section's chain composed and resampled onto the analysis grid (nanohet.steps.register.to_reference)."""
from _adapter import run

run(snakemake, "register", "to_reference")  # noqa: F821
