"""Ion images of one MSI file (adapter for nanohet.pipeline.extract_msi)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))
from nanohet.logs import run_step  # noqa: E402
from nanohet import pipeline  # noqa: E402

run_step(
    snakemake.log[0], pipeline.extract_msi,
    imzml=snakemake.input.imzml, msi_cfg=snakemake.params.msi, out_ions=snakemake.output.ions,
    out_stats=snakemake.output.stats, out_spectrum=snakemake.output.spectrum,
    out_index=snakemake.output.index, threads=snakemake.threads,
    pixel_size_um=snakemake.params.pixel_size, sample=snakemake.wildcards.sample,
)
