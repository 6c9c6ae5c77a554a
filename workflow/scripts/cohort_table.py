"""Cohort tables (adapter for nanohet.pipeline.cohort_table)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from nanohet.logs import run_step  # noqa: E402
from nanohet import pipeline  # noqa: E402

run_step(
    snakemake.log[0], pipeline.cohort_table,
    metric_files=list(snakemake.input.metrics) + list(snakemake.input.volume),
    section_stats=list(snakemake.input.section), sheet=snakemake.params.sheet,
    out_metrics=snakemake.output.metrics, out_summary=snakemake.output.summary,
)
