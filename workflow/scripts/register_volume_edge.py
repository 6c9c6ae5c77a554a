"""Register one volume edge rigidly (adapter for nanohet.pipeline.register_volume_edge)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from nanohet.logs import run_step  # noqa: E402
from nanohet import pipeline  # noqa: E402

run_step(
    snakemake.log[0], pipeline.register_volume_edge,
    sample=snakemake.wildcards.sample, moving=snakemake.wildcards.vmoving, moving_path=snakemake.input.moving,
    fixed=snakemake.wildcards.vfixed, fixed_path=snakemake.input.fixed, vol_cfg=snakemake.params.settings,
    out_transform=snakemake.output.transform, out_qc=snakemake.output.qc,
    moving_mask=snakemake.input.get("moving_mask"), fixed_mask=snakemake.input.get("fixed_mask"),
)
