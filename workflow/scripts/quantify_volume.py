"""Uptake statistics of one volume (adapter for nanohet.pipeline.quantify_volume)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from nanohet.logs import run_step  # noqa: E402
from nanohet import pipeline  # noqa: E402

run_step(
    snakemake.log[0], pipeline.quantify_volume,
    volume=snakemake.input.volume, mask=snakemake.input.mask, out_metrics=snakemake.output.metrics,
    sample=snakemake.wildcards.sample,
)
