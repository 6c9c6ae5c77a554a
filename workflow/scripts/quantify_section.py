"""Metrics of one section (adapter for nanohet.pipeline.quantify_section)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from nanohet.logs import run_step  # noqa: E402
from nanohet import pipeline  # noqa: E402

run_step(
    snakemake.log[0], pipeline.quantify_section,
    fluorescence=snakemake.input.fluorescence, masks=snakemake.input.masks,
    registered=snakemake.input.registered, msi_cfg=snakemake.params.msi,
    mic_cfg=snakemake.params.microscopy, quant_cfg=snakemake.params.quantify,
    out_metrics=snakemake.output.metrics, out_profiles=snakemake.output.profiles,
    sample=snakemake.wildcards.sample, pixel_size_um=snakemake.params.pixel_size,
    channels=snakemake.params.channels, ions=snakemake.input.ions, masks_on_msi=snakemake.input.masks_on_msi,
)
