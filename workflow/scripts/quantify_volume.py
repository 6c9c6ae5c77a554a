"""Uptake statistics of an in vivo volume (nanohet.steps.quantify.volume)."""
from _adapter import run

run(snakemake, "quantify", "volume")  # noqa: F821
