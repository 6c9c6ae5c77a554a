"""Demo validation tables and figure (adapter for nanohet.pipeline)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from nanohet.logs import run_step  # noqa: E402
from nanohet import pipeline  # noqa: E402

run_step(snakemake.log[0], pipeline.validation_outputs, tre_files=list(snakemake.input.tre),
         compare_files=list(snakemake.input.compare), out_tre=snakemake.output.tre,
         out_compare=snakemake.output.compare, out_png=snakemake.output.figure)
