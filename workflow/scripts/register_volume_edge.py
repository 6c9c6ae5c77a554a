"""One rigid volume edge (nanohet.steps.volume.register_volume_edge)."""
from _adapter import run

run(snakemake, "volume", "register_volume_edge")  # noqa: F821
