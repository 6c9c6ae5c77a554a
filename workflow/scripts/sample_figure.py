"""Per-sample figure (adapter for nanohet.pipeline.sample_figure)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from nanohet.logs import run_step  # noqa: E402
from nanohet import pipeline  # noqa: E402

i = snakemake.input
run_step(
    snakemake.log[0], pipeline.sample_figure,
    sample=snakemake.wildcards.sample, fluorescence=i.fluorescence, masks=i.masks,
    registered=i.registered, profiles=i.profiles, metrics=i.metrics,
    mic_cfg=snakemake.params.microscopy, msi_cfg=snakemake.params.msi, out_png=snakemake.output[0],
    pixel_size_um=snakemake.params.pixel_size, channels=snakemake.params.channels,
)
