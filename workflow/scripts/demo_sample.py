"""Simulate one demo sample (Snakemake adapter for nanohet.pipeline.make_demo_sample)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from nanohet.logs import run_step  # noqa: E402
from nanohet import pipeline  # noqa: E402

o = snakemake.output
run_step(
    snakemake.log[0], pipeline.make_demo_sample,
    sample=snakemake.wildcards.sample, group=snakemake.params.group, demo_cfg=snakemake.params.demo,
    thresholds=snakemake.params.thresholds,
    outputs={"fluorescence": o.fluorescence, "he": o.he, "msi": o.msi, "volume": o.volume,
             "volume_mask": o.volume_mask},
    truth_dir=snakemake.params.truth_dir,
)
