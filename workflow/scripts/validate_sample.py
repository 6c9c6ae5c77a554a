"""Compare one demo sample with its ground truth (adapter for nanohet.pipeline.validate_sample)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from nanohet.logs import run_step  # noqa: E402
from nanohet import pipeline  # noqa: E402

i = snakemake.input
run_step(
    snakemake.log[0], pipeline.validate_sample,
    truth_json=i.truth, landmarks=i.landmarks, truth_masks=i.truth_masks, transform=i.transform,
    metrics=i.metrics, volume_metrics=i.volume_metrics[0] if i.volume_metrics else None,
    he_transform=i.he_transform[0] if i.he_transform else None,
    out_tre=snakemake.output.tre, out_compare=snakemake.output.compare, sample=snakemake.wildcards.sample,
)
