"""The cohort validation tables and figure (nanohet.steps.demo.validation_tables)."""
from _adapter import run

run(snakemake, "demo", "validation_tables")  # noqa: F821
