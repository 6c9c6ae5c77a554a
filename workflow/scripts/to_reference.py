"""Compose a section's edge transforms and resample it into the reference (adapter for nanohet.pipeline.to_reference)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from nanohet.logs import run_step  # noqa: E402
from nanohet import pipeline  # noqa: E402

edges = snakemake.input.edges
edges = [edges] if isinstance(edges, str) else list(edges)

run_step(
    snakemake.log[0], pipeline.to_reference,
    modality=snakemake.params.modality, source=snakemake.input.source, edge_transforms=edges,
    fluorescence=snakemake.input.fluorescence, quant_cfg=snakemake.params.quantify,
    out_transform=snakemake.output.transform, out_registered=snakemake.output.registered,
    masks=snakemake.input.get("masks"), out_masks_on_msi=snakemake.output.get("masks_on_msi"),
    pixel_size_um=snakemake.params.pixel_size, channels=snakemake.params.channels,
    source_pixel_size_um=snakemake.params.source_pixel_size,
)
