"""Which measures a sample can have, from the modalities the sample sheet lists for it.

A study is any mix of modalities per sample (an MSI-only, a fluorescence-only or a volume-only sample); the
workflow runs what each sample's modalities allow, and this table says, for every sample, which families of
measures it has and, for those it has not, why. The ``modality`` column is the cohort table's.
"""

from __future__ import annotations

import pandas as pd

# (measure family, cohort-table modality, modalities it needs, what it holds)
MEASURES = (
    ("nanoparticle", "fluorescence", ("fluorescence",),
     "nanoparticle fluorescence per region, on the microscopy pixels"),
    ("microscopy_regions", "fluorescence", ("fluorescence",),
     "viable tissue and necrosis, vessel-distance bands and profiles (L50), marker and drawn regions"),
    ("cells", "cells", ("fluorescence",), "nuclei, cell territories and per-cell uptake"),
    ("analytes_reference_grid", "msi", ("fluorescence", "msi"),
     "MSI analytes registered onto the fluorescence section's analysis grid, per microscopy region"),
    ("analyte_nanoparticle_colocalisation", "msi", ("fluorescence", "msi"),
     "colocalisation of each MSI analyte with the nanoparticle fluorescence"),
    ("analytes_native_pixels", "msi_native", ("msi",), "MSI analytes on their native pixels"),
    ("uptake_volume", "volume", ("volume",), "in vivo uptake (PET in SUV, SPECT) inside the tumour volume"),
    ("ct_tumour", "ct", ("ct",), "CT inside the tumour mask"),
    ("mr_tumour", "mr", ("mr",), "MR inside the tumour mask"),
)

NEEDS_TEXT = {"ct": "a ct row with a tumour mask", "mr": "an mr row with a tumour mask"}


def measure_availability(modalities: dict[str, set[str]]) -> pd.DataFrame:
    """For every sample and measure family: available or not, and why not.

    Parameters
    ----------
    modalities : dict
        ``{sample: {modality, ...}}``: the sample sheet's modalities of each sample, where ``ct`` and ``mr``
        count only with a tumour mask (a CT or MR is measured inside its mask).

    Returns
    -------
    DataFrame
        Columns ``sample``, ``measure``, ``modality`` (the cohort table's), ``available`` (bool), ``reason``
        (empty when available: else the rows the sample sheet lacks) and ``description``; one row per sample
        and family of :data:`MEASURES`, samples sorted.
    """
    rows = []
    for sample in sorted(modalities):
        present = set(modalities[sample])
        for measure, modality, needs, description in MEASURES:
            missing = [m for m in needs if m not in present]
            reason = ("needs " + " and ".join(NEEDS_TEXT.get(m, f"a {m} row") for m in missing)
                      + " in the sample sheet") if missing else ""
            rows.append({"sample": sample, "measure": measure, "modality": modality, "available": not missing,
                         "reason": reason, "description": description})
    return pd.DataFrame(rows, columns=["sample", "measure", "modality", "available", "reason", "description"])
