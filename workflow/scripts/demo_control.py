"""One simulated unlabelled control section (nanohet.steps.demo.demo_control)."""
from _adapter import run

run(snakemake, "demo", "demo_control")  # noqa: F821
