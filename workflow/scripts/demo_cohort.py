"""Simulate the demo cohort and its ground truth (nanohet.steps.demo.demo_cohort)."""
from _adapter import run

run(snakemake, "demo", "demo_cohort")  # noqa: F821
