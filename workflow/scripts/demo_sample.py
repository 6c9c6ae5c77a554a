"""Simulate one demo sample and its ground truth (nanohet.steps.demo.demo_sample)."""
from _adapter import run

run(snakemake, "demo", "demo_sample")  # noqa: F821
