"""The cells of a section (nanohet.steps.cells.cells)."""
from _adapter import run

run(snakemake, "cells", "cells")  # noqa: F821
