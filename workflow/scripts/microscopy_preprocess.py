"""Masks of one fluorescence section (adapter for nanohet.pipeline.preprocess_microscopy)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from nanohet.logs import run_step  # noqa: E402
from nanohet import pipeline  # noqa: E402

run_step(
    snakemake.log[0], pipeline.preprocess_microscopy,
    fluorescence=snakemake.input.fluorescence, mic_cfg=snakemake.params.microscopy,
    out_masks=snakemake.output.masks, out_stats=snakemake.output.stats,
    pixel_size_um=snakemake.params.pixel_size, channels=snakemake.params.channels,
    sample=snakemake.wildcards.sample,
)
