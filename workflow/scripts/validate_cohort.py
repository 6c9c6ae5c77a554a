"""The demo cohort's validation tables and figure (nanohet.steps.demo.validate_cohort)."""
from _adapter import run

run(snakemake, "demo", "validate_cohort")  # noqa: F821
