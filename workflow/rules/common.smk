# Shared helpers: the settings (each config section parsed once), the validated sample sheet and the
# registration graphs, path lookups and resource estimates used by every stage.
import glob
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

from nanohet.io.check import check_inputs
from nanohet.io.check import report as input_report
from nanohet.errors import InputError
from nanohet.io.samplesheet import (
    check_demo_paths,
    check_standards_against_analytes,
    control_rows,
    load_sample_sheet,
    sample_rows,
    standard_rows,
)
from nanohet.io.spect import SHEET_COLUMNS as SPECT_COLUMNS
from nanohet.provenance import code_version
from nanohet.registration.graph import VOLUME_MODALITIES, parse_edges, sample_chains
from nanohet.settings import from_config

ENV = "../../envs/nanohet.yaml"
RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"

try:
    CONFIG = from_config(config)
    FULL_SHEET = load_sample_sheet(CONFIG.samples, workflow.source_path("../schemas/samples.schema.yaml"))
    DEMO = CONFIG.demo.enabled
    if DEMO:
        check_demo_paths(FULL_SHEET, CONFIG.demo.data_dir)
    SHEET = sample_rows(FULL_SHEET)
    # calibration standards (msi_standard rows): one curve per analyte they name, applied to every sample
    STANDARDS = standard_rows(FULL_SHEET)
    check_standards_against_analytes(STANDARDS, [a.name for a in CONFIG.msi.analytes], CONFIG.samples)
    CALIBRATED = sorted(set(STANDARDS["analyte"]))
    # unlabelled control sections (fluorescence_control rows): the nanoparticle channel's autofluorescence
    CONTROLS = control_rows(FULL_SHEET)
    SAMPLES = sorted(SHEET["sample"].unique())
    # registration graphs: per sample, the chain of edges from each section (volume) to the reference
    REFERENCE = CONFIG.registration.reference
    EDGES = parse_edges(CONFIG.registration.edges, reference=REFERENCE)
    # a study is any mix of modalities per sample: sections are registered only where the reference section is
    MODALITIES = {s: set(SHEET.loc[SHEET["sample"] == s, "modality"]) for s in SAMPLES}
    CHAINS = {s: sample_chains(EDGES, MODALITIES[s], s, REFERENCE) if REFERENCE in MODALITIES[s] else {}
              for s in SAMPLES}
    for s, chains in CHAINS.items():
        if "msi" in MODALITIES[s] and REFERENCE in MODALITIES[s] and "msi" not in chains:
            raise InputError(f"sample {s}: registration.edges has no path from msi to the reference ({REFERENCE})")
    VOLUME_REFERENCE = CONFIG.volume_registration.reference
    VOLUME_EDGES = parse_edges(
        CONFIG.volume_registration.edges, VOLUME_MODALITIES, VOLUME_REFERENCE, "volume_registration.edges"
    )
    VOLUME_CHAINS = {
        s: sample_chains(VOLUME_EDGES, set(SHEET.loc[SHEET["sample"] == s, "modality"]), s, VOLUME_REFERENCE)
        for s in SAMPLES
    }
    # every input's metadata before any job (the demo's inputs are made by the run): all problems at once
    INPUT_PROBLEMS = [] if DEMO else check_inputs(FULL_SHEET, CONFIG)
    if INPUT_PROBLEMS:
        raise InputError(input_report(INPUT_PROBLEMS))
except InputError as exc:
    raise WorkflowError(f"nanohet: {exc}") from None

DRUG = CONFIG.msi.analyte("drug")
DRUG = DRUG.name if DRUG is not None else None
# each rule's params carry only the values it uses: a changed value reruns only what depends on it
MSI = CONFIG.msi.to_dict()
MICROSCOPY = CONFIG.microscopy.to_dict()
QUANTIFY = CONFIG.quantify.to_dict()
# what the volume rules use of it (a changed coverage threshold or section setting does not rerun them)
QUANTIFY_VOLUME = {k: QUANTIFY[k] for k in ("histogram_bins", "texture_levels", "volume_shell_edges_mm")}


def _row(sample, modality):
    rows = SHEET[(SHEET["sample"] == sample) & (SHEET["modality"] == modality)]
    return rows.iloc[0] if len(rows) else None


def sample_path(modality):
    """Input function: the sample's file of one modality."""
    return lambda wc: _row(wc.sample, modality)["path"]


def sample_option(sample, modality, column):
    """Optional per-file setting (pixel_size, channels, mask, landmarks) or None."""
    row = _row(sample, modality)
    value = None if row is None else row[column]
    return None if value is None or value != value else value


def option(modality, column):
    """Params function: a sample-sheet option of the sample's file of one modality."""
    return lambda wc: sample_option(wc.sample, modality, column)


def counting_options(wc):
    """Params function: the sample's volume-row values that convert SPECT counts to activity (those given)."""
    values = {c: sample_option(wc.sample, "volume", c) for c in SPECT_COLUMNS}
    return {c: v for c, v in values.items() if v is not None}


def section_source(sample, modality):
    """The file a section is registered from: the MSI ion stack, else the raw image."""
    if modality == "msi":
        return f"{RESULTS}/msi/{sample}/ion_images.ome.tif"
    return _row(sample, modality)["path"]


def edge_inputs(wc):
    """Inputs of one registration edge (both images, fluorescence masks, landmarks if given)."""
    out = {
        "moving_image": section_source(wc.sample, wc.moving),
        "fixed_image": section_source(wc.sample, wc.fixed),
    }
    if "fluorescence" in (wc.moving, wc.fixed):
        out["masks"] = f"{RESULTS}/microscopy/{wc.sample}/masks.ome.tif"
    landmarks = sample_option(wc.sample, wc.moving, "landmarks")
    if landmarks:
        out["landmarks"] = landmarks
    return out


def edge_options(wc):
    """Sample-sheet pixel sizes and channel names of an edge's two sections."""
    return {
        m: {"pixel_size": sample_option(wc.sample, m, "pixel_size")}
        | ({"channels": sample_option(wc.sample, m, "channels")} if m == "fluorescence" else {})
        for m in (wc.moving, wc.fixed)
        if m != "msi"
    }


def chain_transforms(sample, modality):
    """Edge transforms from the edge onto the reference outwards (the order nanohet.registration.graph.compose takes)."""
    return [f"{RESULTS}/registration/{sample}/{e.name}.tfm" for e in reversed(CHAINS[sample][modality])]


def volume_edge_inputs(wc):
    """Inputs of one volume edge: both volumes and, where the sheet has them, their masks."""
    out = {"moving": _row(wc.sample, wc.vmoving)["path"], "fixed": _row(wc.sample, wc.vfixed)["path"]}
    for role, modality in (("moving_mask", wc.vmoving), ("fixed_mask", wc.vfixed)):
        mask = sample_option(wc.sample, modality, "mask")
        if mask:
            out[role] = mask
    return out


def shared_frame(wc):
    """Whether an edge's two volumes share the scanner frame by the sample sheet (same non-empty ``frame``)."""
    a, b = (sample_option(wc.sample, m, "frame") for m in (wc.vmoving, wc.vfixed))
    return bool(a) and a == b


def volume_chain_transforms(sample, modality):
    return [f"{RESULTS}/registration/{sample}/volumes/{e.name}.tfm" for e in reversed(VOLUME_CHAINS[sample][modality])]


def volume_outputs(sample):
    """Volume registration outputs of a sample: edge QC tables, volumes (and masks) on the reference grid."""
    out = set()
    for modality, path in VOLUME_CHAINS[sample].items():
        out |= {f"{RESULTS}/registration/{sample}/volumes/{e.name}_qc.tsv" for e in path}
        out.add(f"{RESULTS}/registration/{sample}/volumes/{modality}_in_reference.nii.gz")
        if sample_option(sample, modality, "mask"):
            out.add(f"{RESULTS}/registration/{sample}/volumes/{modality}_mask_in_reference.nii.gz")
    return sorted(out)


def volume_qc_tables(sample):
    return sorted({f"{RESULTS}/registration/{sample}/volumes/{e.name}_qc.tsv" for p in VOLUME_CHAINS[sample].values() for e in p})


def qc_summary():
    """The end-of-run summary (also after a failed run): every flagged check, on the terminal."""
    from nanohet.flags import summary_lines

    for line in summary_lines(RESULTS):
        (logger.warning if "FLAGGED" in line or "flagged;" in line else logger.info)(line)


def edge_qc_tables(sample):
    return sorted({f"{RESULTS}/registration/{sample}/{e.name}_qc.tsv" for path in CHAINS[sample].values() for e in path})


def drawn_regions(wc):
    """The GeoJSON of regions drawn on the sample's fluorescence section, if the sheet names one."""
    path = sample_option(wc.sample, "fluorescence", "regions")
    return [path] if path else []


def ibd_of(imzml):
    """The .ibd beside an imzML, its extension in any case (as the reader finds it)."""
    imzml = Path(imzml)
    for candidate in sorted(imzml.parent.glob(glob.escape(imzml.stem) + ".*")) if imzml.parent.is_dir() else []:
        if candidate.stem == imzml.stem and candidate.suffix.lower() == ".ibd":
            return str(candidate)
    return str(imzml.with_suffix(".ibd"))


def ibd_path(wc):
    return ibd_of(_row(wc.sample, "msi")["path"])


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


def samples_with(*modalities):
    """The samples whose sheet rows include every one of ``modalities``."""
    return [s for s in SAMPLES if all(m in MODALITIES[s] for m in modalities)]


# the kinds of sample by their modalities: a fluorescence section (with or without MSI), MSI without a section
SECTION_SAMPLES = samples_with(REFERENCE)
SECTION_MSI_SAMPLES = samples_with(REFERENCE, "msi")
MSI_ONLY_SAMPLES = [s for s in samples_with("msi") if s not in SECTION_SAMPLES]


def one_of(samples):
    """A wildcard constraint matching exactly these samples (nothing when there are none)."""
    return "|".join(re.escape(s) for s in samples) or "(?!)"


def section_msi_inputs(wc):
    """The MSI inputs of a section's quantification, cells and figure: none for a sample without MSI."""
    if wc.sample not in SECTION_MSI_SAMPLES:
        return {}
    return {"registered": f"{RESULTS}/registration/{wc.sample}/msi_in_reference.ome.tif",
            "ions": f"{RESULTS}/msi/{wc.sample}/ion_images.ome.tif",
            "masks_on_msi": f"{RESULTS}/quantify/{wc.sample}/masks_on_msi.ome.tif"}


def registered_msi(wc):
    return [f"{RESULTS}/registration/{wc.sample}/msi_in_reference.ome.tif"] if wc.sample in SECTION_MSI_SAMPLES else []


def measured_modalities():
    """Per sample, the modalities that are measured (a CT or MR only with a tumour mask), for the availability
    table."""
    return {s: sorted(m for m in MODALITIES[s] if m not in ("ct", "mr") or sample_option(s, m, "mask"))
            for s in SAMPLES}


def anatomical_volume_metrics():
    """The metrics tables of every CT and MR volume that has a tumour mask (quantified like the uptake volume)."""
    return [f"{RESULTS}/quantify/{s}/{m}_metrics.tsv" for m in ("ct", "mr") for s in samples_with(m)
            if sample_option(s, m, "mask")]


def sheet_value(sample, column):
    """A sample's value of a column all its rows share (subject, group, tumour)."""
    return str(SHEET.loc[SHEET["sample"] == sample, column].iloc[0])


def group_of(sample):
    return sheet_value(sample, "group")


def sample_records():
    """subject, group and tumour of every sample (for the cohort table)."""
    return SHEET.drop_duplicates("sample")[["sample", "subject", "group", "tumour"]].to_dict("records")


def standard_records():
    """The msi_standard rows (path, analyte, concentration, pixel_size) for the calibration rule."""
    return [
        {k: (None if v != v else v) for k, v in rec.items()}
        for rec in STANDARDS[["path", "analyte", "concentration", "pixel_size"]].to_dict("records")
    ]


def standard_rows_of(path):
    """The msi_standard rows of one standard file (a row per analyte it contains)."""
    rows = [r for r in standard_records() if Path(r["path"]) == Path(path)]
    if not rows:
        raise WorkflowError(f"nanohet: no msi_standard row of the sample sheet names {path}")
    return rows


def control_records():
    """The fluorescence_control rows (path, pixel_size, channels) for the autofluorescence rule."""
    return [{k: (None if v != v else v) for k, v in rec.items()}
            for rec in CONTROLS[["path", "pixel_size", "channels"]].to_dict("records")]


def autofluorescence_table():
    """The controls' autofluorescence table every nanoparticle measure subtracts: empty without controls."""
    return [f"{RESULTS}/microscopy/autofluorescence.tsv"] if len(CONTROLS) else []


def calibration_table():
    """The calibration curves every MSI extraction applies: empty without standards."""
    return [f"{RESULTS}/msi/calibration.tsv"] if CALIBRATED else []


def all_outputs():
    out = [
        f"{RESULTS}/tables/qc_flags.tsv",
        f"{RESULTS}/tables/cohort_metrics.tsv",
        f"{RESULTS}/tables/cohort_summary.tsv",
        f"{RESULTS}/figures/cohort_summary.png",
        f"{RESULTS}/figures/cohort_summary.svg",
        f"{RESULTS}/figures/cohort_summary.pdf",
    ]
    out += [f"{RESULTS}/tables/{t}.tsv" for t in ("availability", "group_comparisons", "variance_components",
                                                 "invivo_exvivo", "invivo_exvivo_correlations")]
    out += expand(f"{RESULTS}/figures/samples/{{sample}}.png", sample=SECTION_SAMPLES)
    out += expand(f"{RESULTS}/quantify/{{sample}}/region_maps.ome.tif", sample=MSI_ONLY_SAMPLES)
    for s in SAMPLES:
        out += edge_qc_tables(s)
        out += [f"{RESULTS}/registration/{s}/{m}_in_reference.ome.tif" for m in CHAINS[s]]
        out += volume_outputs(s)
    out += calibration_table()
    if DEMO:
        out += [
            f"{RESULTS}/tables/registration_error.tsv",
            f"{RESULTS}/tables/metrics_vs_truth.tsv",
            f"{RESULTS}/tables/variance_vs_truth.tsv",
            f"{RESULTS}/figures/validation.png",
        ]
    return out


# ---------------------------------------------------------------------------------------------- the demo cohort


def demo_sample_records():
    """demo_cohort: the keyword arguments of nanohet.steps.demo.demo_sample for every sample of the sheet."""
    return [
        {
            "sample": s,
            "group": group_of(s),
            "subject": sheet_value(s, "subject"),
            "tumour": sheet_value(s, "tumour"),
            "truth_dir": f"{DEMO_TRUTH}/{s}",
            **{f"out_{name}": f"{DEMO_DATA}/{s}/{name}{ext}" for name, ext in (
                ("fluorescence", ".ome.tif"), ("he", ".ome.tif"), ("volume", ".nii.gz"), ("volume_mask", ".nii.gz"))},
            "out_msi": f"{DEMO_DATA}/{s}/msi.imzML",
        }
        for s in SAMPLES
    ]


def demo_control_records():
    """demo_cohort: the unlabelled control sections the sheet lists (control name, output path)."""
    return [{"control": Path(rec["path"]).name.removesuffix(".ome.tif"), "out_fluorescence": rec["path"]}
            for rec in control_records()]


def demo_standard_records():
    """demo_cohort: the calibration standards the sheet lists (name, their rows, output imzML)."""
    paths = sorted({rec["path"] for rec in standard_records()})
    return [{"standard": Path(p).stem, "rows": standard_rows_of(p), "out_imzml": p} for p in paths]


# what demo_sample writes into each sample's truth folder besides its data files
DEMO_TRUTH_FILES = ("truth.json", "landmarks_msi.csv", "truth_cells.tsv", "truth_maps.ome.tif",
                    "truth_masks.ome.tif", "truth_fields.ome.tif")


def demo_outputs():
    """demo_cohort's outputs: every file of the records above (an imzML with its .ibd) and every truth file."""
    out = []
    for rec in demo_sample_records() + demo_control_records() + demo_standard_records():
        for key, path in rec.items():
            if key.startswith("out_"):
                out += [path, path.removesuffix(".imzML") + ".ibd"] if path.endswith(".imzML") else [path]
    return out + [f"{DEMO_TRUTH}/{s}/{f}" for s in SAMPLES for f in DEMO_TRUTH_FILES]


def _validation_files(s):
    """The files one demo section's validation reads (keyword arguments of nanohet.steps.demo.sample_validation)."""
    truth = f"{DEMO_TRUTH}/{s}"
    files = {
        "truth": f"{truth}/truth.json",
        "landmarks": f"{truth}/landmarks_msi.csv",
        "truth_masks": f"{truth}/truth_masks.ome.tif",
        "truth_fields": f"{truth}/truth_fields.ome.tif",
        "truth_cells": f"{truth}/truth_cells.tsv",
        "cell_metrics": f"{RESULTS}/cells/{s}/cell_metrics.tsv",
        "transform": f"{RESULTS}/registration/{s}/msi_to_reference.tfm",
        "metrics": f"{RESULTS}/quantify/{s}/metrics.tsv",
        "fluorescence_masks": f"{RESULTS}/microscopy/{s}/masks.ome.tif",
    }
    if s in samples_with("volume"):
        files["volume_metrics"] = f"{RESULTS}/quantify/{s}/volume_metrics.tsv"
    if "he" in CHAINS[s]:
        files["he_transform"] = f"{RESULTS}/registration/{s}/he_to_reference.tfm"
    return files


def validation_records():
    """validate_cohort: per demo section (fluorescence and MSI), the files its validation reads."""
    return [{"sample": s, **_validation_files(s)} for s in SECTION_MSI_SAMPLES]


def validation_inputs(wc):
    """validate_cohort's inputs: every section's validation files."""
    return {"files": [f for s in SECTION_MSI_SAMPLES for f in _validation_files(s).values()]}
