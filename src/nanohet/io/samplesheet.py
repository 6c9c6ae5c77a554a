"""Loading and checking the sample sheet (config/samples.tsv)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import yaml

from ..errors import InputError

REQUIRED_MODALITIES = ("fluorescence", "msi")
DEMO_FILES = {
    "fluorescence": "fluorescence.ome.tif", "he": "he.ome.tif",
    "msi": "msi.imzML", "volume": "volume.nii.gz",
}


OPTIONAL_COLUMNS = ("section", "timepoint", "series", "frame", "pixel_size", "mask", "channels", "landmarks")


def _row_label(i: int, row: dict) -> str:
    return f"row {i + 2} (subject {row.get('subject')!r}, modality {row.get('modality')!r})"


def load_sample_sheet(path: str | os.PathLike, schema_path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate the sample sheet.

    Every row is checked against the JSON schema (draft 2020-12); then the
    sheet as a whole: unique (subject, tumour, modality), one group per
    subject, the modalities every sample needs (fluorescence and msi), a
    mask for every volume.

    Returns
    -------
    DataFrame
        The rows with an added ``sample`` column (:func:`sample_id`); read
        optional cells with :func:`optional` (pandas stores empty ones as NaN).

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
        if rec.get("pixel_size") is not None:
            try:
                rec["pixel_size"] = float(rec["pixel_size"])
            except ValueError:
                raise InputError(f"{path}: {_row_label(i, rec)}: pixel_size {rec['pixel_size']!r} "
                                 "is not a number") from None
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
    for col in OPTIONAL_COLUMNS:
        if col not in out:
            out[col] = None
    out["sample"] = [sample_id(r) for r in out.to_dict("records")]

    dup = out.duplicated(["sample", "modality", "series"], keep=False)
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][1])
        raise InputError(f"{path}: {_row_label(i, records[i])}: sample {out['sample'][i]} has "
                         f"more than one {out['modality'][i]} row")
    groups = out.groupby("subject")["group"].nunique()
    if (groups > 1).any():
        raise InputError(f"{path}: subject {groups[groups > 1].index[0]!r} appears in several groups")
    for sample, rows in out.groupby("sample"):
        missing = [m for m in REQUIRED_MODALITIES if m not in set(rows["modality"])]
        if missing:
            raise InputError(f"{path}: sample {sample} has no {' or '.join(missing)} row "
                             f"(every sample needs {', '.join(REQUIRED_MODALITIES)})")
    for i, rec in enumerate(records):
        if rec["modality"] == "volume" and not rec.get("mask"):
            raise InputError(f"{path}: {_row_label(i, rec)}: a volume needs a tumour mask (column mask)")
        if rec.get("landmarks") and rec["modality"] not in ("msi", "he"):
            raise InputError(f"{path}: {_row_label(i, rec)}: landmarks belong on an msi or he row (a section "
                             "registered onto the fluorescence section)")
    return out


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

    Rows of modalities the demo does not simulate (ct, mr) keep their own paths.
    """
    for i, row in df.iterrows():
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
