"""The cohort's variance shares against the demo's configured and realised truth (nanohet.steps.demo.validate_variance)."""
from _adapter import run

run(snakemake, "demo", "validate_variance")  # noqa: F821
