"""One edge of the registration graph (nanohet.steps.register.register_edge)."""
from _adapter import run

run(snakemake, "register", "register_edge")  # noqa: F821
