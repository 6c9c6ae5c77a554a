"""One simulated calibration standard (nanohet.steps.demo.demo_standard)."""
from _adapter import run

run(snakemake, "demo", "demo_standard")  # noqa: F821
