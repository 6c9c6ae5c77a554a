# Shared helpers: the validated sample sheet and path lookups used by every stage.
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

from nanohet.errors import InputError
from nanohet.samplesheet import check_demo_paths, load_sample_sheet

ENV = "../../envs/nanohet.yaml"
RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"

try:
    SHEET = load_sample_sheet(config["samples"], workflow.source_path("../schemas/samples.schema.yaml"))
    validate(SHEET.drop(columns="sample"), "../schemas/samples.schema.yaml")
    DEMO = bool(config["demo"]["enabled"])
    if DEMO:
        check_demo_paths(SHEET, config["demo"].get("data_dir", "results/demo/data"))
except InputError as exc:
    raise WorkflowError(f"nanohet: {exc}") from None

SAMPLES = sorted(SHEET["sample"].unique())


def _row(sample, modality):
    rows = SHEET[(SHEET["sample"] == sample) & (SHEET["modality"] == modality)]
    return rows.iloc[0] if len(rows) else None


def sample_path(modality):
    """Input function: the sample's file of one modality."""
    return lambda wc: _row(wc.sample, modality)["path"]


def landmarks_of(modality):
    """Input function: the landmark CSV of a sample's section, or nothing."""
    return lambda wc: sample_option(wc.sample, modality, "landmarks") or []


def ibd_path(wc):
    return str(Path(_row(wc.sample, "msi")["path"]).with_suffix(".ibd"))


def sample_option(sample, modality, column):
    """Optional per-file setting (pixel_size, channels, mask) or None."""
    row = _row(sample, modality)
    value = None if row is None else row[column]
    return None if value is None or value != value else value


def input_mb(input):
    """Total size (MB) of a job's existing input files, for resource estimates."""
    total = 0
    for f in input:
        try:
            total += Path(f).stat().st_size
        except OSError:
            pass
    return total / 1e6


def mem_mb(base, per_input_mb):
    """Resource callable: base + per_input_mb x input MB, doubled on each retry."""
    return lambda wc, input, attempt: int((base + per_input_mb * input_mb(input)) * attempt)


def samples_with(modality):
    return [s for s in SAMPLES if _row(s, modality) is not None]


def group_of(sample):
    return _row(sample, "fluorescence")["group"]


def all_outputs():
    out = [
        f"{RESULTS}/tables/cohort_metrics.tsv",
        f"{RESULTS}/tables/cohort_summary.tsv",
        f"{RESULTS}/figures/cohort_summary.png",
    ]
    out += expand(f"{RESULTS}/figures/samples/{{sample}}.png", sample=SAMPLES)
    out += expand(f"{RESULTS}/registration/{{sample}}/he_qc.tsv", sample=samples_with("he"))
    if DEMO:
        out += [
            f"{RESULTS}/tables/registration_error.tsv",
            f"{RESULTS}/tables/metrics_vs_truth.tsv",
            f"{RESULTS}/figures/validation.png",
        ]
    return out
