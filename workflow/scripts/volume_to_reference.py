"""Resample a volume or its mask onto the reference volume's grid (adapter for nanohet.pipeline.volume_to_reference)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from nanohet.logs import run_step  # noqa: E402
from nanohet import pipeline  # noqa: E402

edges = snakemake.input.edges
edges = [edges] if isinstance(edges, str) else list(edges)

run_step(
    snakemake.log[0], pipeline.volume_to_reference,
    image=snakemake.input.image, edge_transforms=edges, reference=snakemake.input.reference,
    out_image=snakemake.output.image, out_transform=snakemake.output.get("transform"),
    is_mask=snakemake.params.is_mask,
)
