"""The demo cohort's design: a hierarchical sample sheet (groups, animals, tumours, sections).

The demo answers the field's scale question with a known truth: every section of a tumour of an animal of a
group gets the uptake effects of its animal, tumour and section (``demo.level_sd``,
:func:`nanohet.demo.cohort.level_effects`), and the cohort's variance decomposition is validated against them.
``tools/demo_sheets.py`` writes the repository's sheets from :func:`hierarchical_sheet`; a test checks that they
agree.
"""

from __future__ import annotations

import pandas as pd

COLUMNS = ["subject", "group", "tumour", "section", "modality", "path", "pixel_size", "mask", "channels", "analyte",
           "concentration"]
SECTION_FILES = {"fluorescence": "fluorescence.ome.tif", "msi": "msi.imzML", "he": "he.ome.tif",
                 "volume": "volume.nii.gz"}
STANDARD_LEVELS_UG_PER_G = (0, 1, 2, 5, 10, 20)  # doxorubicin of the demo's mimetic-tissue standards


def hierarchical_sheet(groups=("liposomal", "thermosensitive"), animals: int = 3, tumours: int = 2,
                       sections: int = 2, data_dir: str = "results/demo/data", he: str = "first_tumour",
                       volume: str = "each_tumour", standards=STANDARD_LEVELS_UG_PER_G, controls: int = 2,
                       analyte: str = "doxorubicin") -> pd.DataFrame:
    """The sample sheet of a balanced hierarchical demo cohort.

    Parameters
    ----------
    groups : sequence of str
        Treatment groups (each must be defined under ``demo.groups`` in the config).
    animals, tumours, sections : int
        Animals per group (subjects ``m01``, ``m02``, ... numbered across groups), tumours per animal (``T1``,
        ...) and serial sections per tumour (``s1``, ...). Every section has a fluorescence image and an MSI
        acquisition.
    data_dir : str
        ``demo.data_dir``: where the demo writes each sample's files.
    he : {"first_section", "first_tumour", "none"}
        Which sections also have an adjacent H&E section: the first section of every tumour, only that of each
        animal's first tumour, or none.
    volume : {"each_tumour", "none"}
        An in vivo volume (with its tumour mask) per tumour, on its first section's sample (the in vivo to ex
        vivo join is per tumour).
    standards : sequence of float
        Concentrations (µg/g) of the ``msi_standard`` rows of ``analyte``; empty for none.
    controls : int
        Unlabelled control sections (``fluorescence_control`` rows).

    Returns
    -------
    DataFrame
        The sheet's rows in :data:`COLUMNS` order, empty cells as empty strings.
    """
    if he not in ("first_section", "first_tumour", "none") or volume not in ("each_tumour", "none"):
        raise ValueError(f"he={he!r}, volume={volume!r}: see hierarchical_sheet's parameters")
    rows = []
    subject = 0
    for group in groups:
        for _ in range(animals):
            subject += 1
            for t in range(1, tumours + 1):
                for s in range(1, sections + 1):
                    sid = f"m{subject:02d}"
                    sample = f"{sid}_T{t}_s{s}"
                    modalities = ["fluorescence", "msi"]
                    if s == 1 and (he == "first_section" or (he == "first_tumour" and t == 1)):
                        modalities.append("he")
                    if s == 1 and volume == "each_tumour":
                        modalities.append("volume")
                    for modality in modalities:
                        folder = f"{data_dir}/{sample}"
                        rows.append({"subject": sid, "group": group, "tumour": f"T{t}", "section": f"s{s}",
                                     "modality": modality, "path": f"{folder}/{SECTION_FILES[modality]}",
                                     "mask": f"{folder}/volume_mask.nii.gz" if modality == "volume" else ""})
    for i, level in enumerate(standards):
        rows.append({"modality": "msi_standard", "path": f"{data_dir}/standards/std_{i}.imzML", "analyte": analyte,
                     "concentration": f"{level:g}"})
    for i in range(1, controls + 1):
        rows.append({"modality": "fluorescence_control", "path": f"{data_dir}/controls/control_{i}.ome.tif"})
    return pd.DataFrame([{c: row.get(c, "") for c in COLUMNS} for row in rows], columns=COLUMNS)


def sheet_text(sheet: pd.DataFrame) -> str:
    """The sheet as the tab-separated text of ``config/samples.tsv``."""
    return sheet.to_csv(sep="\t", index=False, lineterminator="\n")
