"""One streaming pass over an imzML file (nanohet.steps.msi.extract)."""
from _adapter import run

run(snakemake, "msi", "extract")  # noqa: F821
