"""Steps of ``workflow/rules/qc.smk``: the run's table of QC flags."""

from __future__ import annotations

import logging

from ..atomic import write_table
from ..flags import flag_table

log = logging.getLogger("nanohet")


def qc_flags(out_table: str, edges: list[str] | None = None, volume_edges: list[str] | None = None,
             msi: list[str] | None = None) -> None:
    """Every QC check of the run (registration and volume edges, MSI target ions) in one table, flagged rows
    first."""
    flags = flag_table({"registration": list(edges or []), "volume registration": list(volume_edges or []),
                        "msi target": list(msi or [])})
    write_table(flags, out_table)
    for r in flags[flags.flagged].itertuples():
        log.warning("FLAGGED %s %s %s: %s", r.sample, r.stage, r.item, r.reason)
    log.info("%d of %d checks flagged", int(flags.flagged.sum()), len(flags))
