"""Loading and checking the sample sheet (config/samples.tsv)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
import yaml

from ..errors import InputError
from .spect import SHEET_COLUMNS as SPECT_COLUMNS
from .spect import CountCalibration

# a sample is any mix of modalities; it needs one that is measured on its own (an H&E section is only
# registered onto the fluorescence section; a CT or MR is measured only inside a tumour mask)
MEASURED_MODALITIES = ("fluorescence", "msi", "volume", "ct", "mr")
DEMO_FILES = {
    "fluorescence": "fluorescence.ome.tif", "he": "he.ome.tif",
    "msi": "msi.imzML", "volume": "volume.nii.gz",
}


OPTIONAL_COLUMNS = ("section", "timepoint", "series", "frame", "pixel_size", "mask", "structure", "dicom_series",
                    "channels", "landmarks", "regions", "analyte", "concentration") + SPECT_COLUMNS
NUMERIC_COLUMNS = ("pixel_size", "concentration") + tuple(c for c in SPECT_COLUMNS if c != "radionuclide")
STANDARD = "msi_standard"
CONTROL = "fluorescence_control"  # an unlabelled control section (autofluorescence); belongs to no sample
REFERENCE_ROWS = (STANDARD, CONTROL)


def _row_label(i: int, row: dict) -> str:
    if row.get("modality") in REFERENCE_ROWS:
        return f"row {i + 2} ({row.get('modality')} {row.get('path')!r})"
    return f"row {i + 2} (subject {row.get('subject')!r}, modality {row.get('modality')!r})"


def load_sample_sheet(path: str | os.PathLike, schema_path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate the sample sheet.

    Every row is checked against the JSON schema (draft 2020-12); then the
    sheet as a whole: unique (subject, tumour, modality), one group per
    subject, a measured modality in every sample (fluorescence, msi, or a
    volume; any mix), a mask for every uptake volume; one row per calibration standard and analyte.

    Returns
    -------
    DataFrame
        The rows with an added ``sample`` column (:func:`sample_id`; None on
        the calibration standards' ``msi_standard`` rows, which belong to no
        sample: split with :func:`sample_rows` and :func:`standard_rows`);
        read optional cells with :func:`optional` (pandas stores empty ones
        as NaN).

    Raises
    ------
    InputError
        Naming the file, the row (1-based, counting the header as row 1) and
        the problem.
    """
    import jsonschema

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: sample sheet not found")
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")
    df.columns = [c.strip() for c in df.columns]
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    known = set(schema["properties"])
    unknown = [c for c in df.columns if c not in known]
    if unknown:
        raise InputError(f"{path}: unknown column(s) {unknown}; allowed: {sorted(known)}")
    records = []
    for i, row in enumerate(df.to_dict("records")):
        rec = {k: (v.strip() if v.strip() else None) for k, v in row.items()}
        for col in NUMERIC_COLUMNS:
            if rec.get(col) is not None:
                try:
                    rec[col] = float(rec[col])
                except ValueError:
                    raise InputError(f"{path}: {_row_label(i, rec)}: {col} {rec[col]!r} is not a number") from None
                if not math.isfinite(rec[col]):  # float() reads nan and inf, which the schema's bounds let through
                    raise InputError(f"{path}: {_row_label(i, rec)}: {col} {rec[col]} is not a finite number")
        rec = {k: v for k, v in rec.items() if v is not None or k in OPTIONAL_COLUMNS}
        errors = sorted(validator.iter_errors(rec), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            where = f"column {e.path[0]}" if e.path else "row"
            raise InputError(f"{path}: {_row_label(i, rec)}: {where}: {e.message}")
        records.append(rec)
    if not records:
        raise InputError(f"{path}: the sample sheet has no rows")
    out = pd.DataFrame.from_records(records)
    for col in ("subject", "group", "tumour") + OPTIONAL_COLUMNS:
        if col not in out:
            out[col] = None
    reference = out["modality"].isin(REFERENCE_ROWS).to_numpy()
    out["sample"] = [None if ref else sample_id(r) for ref, r in zip(reference, out.to_dict("records"))]
    _check_standards(out[(out["modality"] == STANDARD).to_numpy()], records, path)
    if reference.all():
        raise InputError(f"{path}: the sample sheet has calibration standards or controls but no sample")
    _check_samples(out[~reference], records, path)
    return out


def sample_rows(sheet: pd.DataFrame) -> pd.DataFrame:
    """The rows of a loaded sample sheet that belong to samples (every modality but standards and controls)."""
    return sheet[~sheet["modality"].isin(REFERENCE_ROWS)]


def control_rows(sheet: pd.DataFrame) -> pd.DataFrame:
    """The unlabelled control sections (``fluorescence_control``) of a loaded sample sheet."""
    return sheet[sheet["modality"] == CONTROL]


def standard_rows(sheet: pd.DataFrame) -> pd.DataFrame:
    """The calibration-standard rows (``msi_standard``) of a loaded sample sheet."""
    return sheet[sheet["modality"] == STANDARD]


def check_standards_against_analytes(standards: pd.DataFrame, analytes: list[str], path) -> None:
    """Every standard names a configured analyte, and each calibrated analyte has two or more levels."""
    for i, row in standards.iterrows():
        if row["analyte"] not in analytes:
            raise InputError(f"{path}: row {i + 2} (msi_standard {row['path']}): analyte {row['analyte']!r} is not "
                             f"one of the configured msi.analytes {analytes}")
    for analyte, rows in standards.groupby("analyte"):
        levels = sorted(set(rows["concentration"]))
        if len(levels) < 2:
            raise InputError(f"{path}: the msi_standard rows of {analyte} have {len(levels)} concentration "
                             f"level(s) {levels}; a calibration curve needs two or more")


def _check_standards(standards: pd.DataFrame, records: list[dict], path: Path) -> None:
    dup = standards.duplicated(["path", "analyte"], keep=False)
    if dup.any():
        i = int(dup[dup].index[1])
        raise InputError(f"{path}: {_row_label(i, records[i])}: the standard {standards['path'][i]} has more than "
                         f"one row for analyte {standards['analyte'][i]!r}")


def _check_samples(out: pd.DataFrame, records: list[dict], path: Path) -> None:
    dup = out.duplicated(["sample", "modality", "series"], keep=False)
    if dup.any():
        i = int(dup[dup].index[1])
        raise InputError(f"{path}: {_row_label(i, records[i])}: sample {out['sample'][i]} has "
                         f"more than one {out['modality'][i]} row")
    ids = out["sample"].drop_duplicates()
    folded = ids.str.lower().duplicated(keep=False)
    if folded.any():  # results/<sample>/ folders would collide on a case-insensitive file system
        raise InputError(f"{path}: sample ids {sorted(ids[folded])} differ only in upper/lower case")
    groups = out.groupby("subject")["group"].nunique()
    if (groups > 1).any():
        raise InputError(f"{path}: subject {groups[groups > 1].index[0]!r} appears in several groups")
    for sample, rows in out.groupby("sample"):
        present = set(rows["modality"])
        measured = [m for m in MEASURED_MODALITIES if m in present and (m not in ("ct", "mr") or rows.loc[
            rows["modality"] == m, "mask"].map(optional).notna().any())]
        if not measured:
            raise InputError(f"{path}: sample {sample} has only {', '.join(sorted(present))} row(s): nothing is "
                             "measured without a fluorescence, msi or volume row (or a ct/mr row with a mask)")
        if "he" in present and "fluorescence" not in present:
            raise InputError(f"{path}: sample {sample} has an he row but no fluorescence row: an H&E section is "
                             "registered onto the fluorescence section (the reference frame)")
        if "labels" in present and "fluorescence" not in present:
            raise InputError(f"{path}: sample {sample} has a labels row but no fluorescence row: a nuclei label "
                             "image belongs to the fluorescence section it was segmented from")
    for i in out.index:
        rec = records[i]
        if rec["modality"] == "volume" and not rec.get("mask"):
            raise InputError(f"{path}: {_row_label(i, rec)}: a volume needs a tumour mask (column mask)")
        if rec.get("regions") and rec["modality"] != "fluorescence":
            raise InputError(f"{path}: {_row_label(i, rec)}: regions (GeoJSON) are drawn on the fluorescence "
                             "section, the reference frame; put them on its row")
        counting = {c: rec.get(c) for c in SPECT_COLUMNS if rec.get(c) is not None}
        if counting and rec["modality"] != "volume":
            raise InputError(f"{path}: {_row_label(i, rec)}: {', '.join(counting)} belong on a volume row (a SPECT "
                             "or other counting volume converted to activity)")
        CountCalibration.from_row(counting, f"{path}: {_row_label(i, rec)}")
        if rec.get("landmarks") and rec["modality"] not in ("msi", "he"):
            raise InputError(f"{path}: {_row_label(i, rec)}: landmarks belong on an msi or he row (a section "
                             "registered onto the fluorescence section)")


def sample_id(row: dict) -> str:
    """The sample a row belongs to: ``subject_tumour``, then ``_section`` and ``_timepoint`` when given."""
    parts = [row["subject"], row["tumour"]] + [row[c] for c in ("section", "timepoint") if optional(row.get(c))]
    return "_".join(parts)


def optional(value):
    """An optional sample-sheet cell as a value or None (empty cells read back as NaN)."""
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return None
    return value


def check_demo_paths(df: pd.DataFrame, data_dir: str) -> None:
    """With the demo enabled, every path must be the one the demo rule writes.

    Rows of modalities the demo does not simulate (ct, mr, labels) keep their own paths; calibration standards
    (``msi_standard``) are simulated as ``<data_dir>/standards/<name>.imzML`` at the sheet's concentrations, and
    unlabelled control sections (``fluorescence_control``) as ``<data_dir>/controls/<name>.ome.tif``.
    """
    # rows that belong to no sample: (folder under data_dir, extension, what they are)
    reference = {STANDARD: ("standards", ".imzML", "standards"), CONTROL: ("controls", ".ome.tif", "control sections")}
    for i, row in df.iterrows():
        if row["modality"] in reference:
            sub, ext, what = reference[row["modality"]]
            folder = os.path.normpath(f"{data_dir}/{sub}")
            if os.path.dirname(os.path.normpath(row["path"])) != folder or not row["path"].endswith(ext):
                raise InputError(
                    f"demo.enabled is true but sample sheet row {i + 2} ({row['modality']}) points to "
                    f"{row['path']!r}; the demo writes its {what} as {folder}/<name>{ext}. Set demo.enabled: "
                    "false in the config to analyse your own data.")
            continue
        if row["modality"] not in DEMO_FILES:
            continue
        expected = f"{data_dir}/{row['sample']}/{DEMO_FILES[row['modality']]}"
        if os.path.normpath(row["path"]) != os.path.normpath(expected):
            raise InputError(
                f"demo.enabled is true but sample sheet row {i + 2} ({row['sample']}, {row['modality']}) "
                f"points to {row['path']!r}; demo files are written to {expected!r}. "
                "Set demo.enabled: false in the config to analyse your own data."
            )
        if row["modality"] == "volume":
            mask = f"{data_dir}/{row['sample']}/volume_mask.nii.gz"
            if os.path.normpath(optional(row["mask"]) or "") != os.path.normpath(mask):
                raise InputError(f"demo.enabled is true but the volume mask of {row['sample']} is "
                                 f"{row['mask']!r}; the demo writes {mask!r}")
