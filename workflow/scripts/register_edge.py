"""Register one edge of the registration graph (adapter for nanohet.pipeline.register_edge)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from nanohet.logs import run_step  # noqa: E402
from nanohet import pipeline  # noqa: E402


def files(role):
    out = {"image": snakemake.input[role]}
    if getattr(snakemake.wildcards, role) == "fluorescence":
        out["masks"] = snakemake.input.masks
    return out


run_step(
    snakemake.log[0], pipeline.register_edge,
    sample=snakemake.wildcards.sample, moving=snakemake.wildcards.moving, moving_files=files("moving"),
    fixed=snakemake.wildcards.fixed, fixed_files=files("fixed"), reg_cfg=snakemake.params.registration,
    mic_cfg=snakemake.params.microscopy, out_transform=snakemake.output.transform, out_qc=snakemake.output.qc,
    out_figure=snakemake.output.figure, landmarks=snakemake.input.get("landmarks"),
    options=snakemake.params.options,
)
