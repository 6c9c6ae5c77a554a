"""Uptake statistics of an in vivo volume (nanohet.steps.volume.quantify_volume)."""
from _adapter import run

run(snakemake, "volume", "quantify_volume")  # noqa: F821
