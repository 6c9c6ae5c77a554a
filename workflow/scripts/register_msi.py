"""Register MSI onto the fluorescence section (adapter for nanohet.pipeline.register_msi)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from nanohet.logs import run_step  # noqa: E402
from nanohet import pipeline  # noqa: E402

run_step(
    snakemake.log[0], pipeline.register_msi,
    ions=snakemake.input.ions, fluorescence=snakemake.input.fluorescence, masks=snakemake.input.masks,
    reg_cfg=snakemake.params.registration, quant_cfg=snakemake.params.quantify,
    mic_cfg=snakemake.params.microscopy, out_transform=snakemake.output.transform,
    out_registered=snakemake.output.registered, out_qc=snakemake.output.qc, out_figure=snakemake.output.figure,
    out_masks_on_msi=snakemake.output.masks_on_msi,
    sample=snakemake.wildcards.sample, pixel_size_um=snakemake.params.pixel_size,
    channels=snakemake.params.channels,
    landmarks=snakemake.input.landmarks or None,
)
