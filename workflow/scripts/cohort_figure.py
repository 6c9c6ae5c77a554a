"""Cohort summary figure (adapter for nanohet.pipeline.cohort_figure)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from nanohet.logs import run_step  # noqa: E402
from nanohet import pipeline  # noqa: E402

run_step(
    snakemake.log[0], pipeline.cohort_figure,
    cohort_tsv=snakemake.input[0], msi_cfg=snakemake.params.msi, out_png=snakemake.output[0],
)
