"""The demo cohort: per-sample parameters from the config, and one sample's data and ground truth."""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_table, write_text_atomic
from ..errors import InputError
from ..image import SectionImage, block_origin, block_reduce_mean
from ..io.imzml import deterministic_uuid
from ..io.ometiff import write_ome_tiff
from ..io.volumes import write_volume
from ..settings import DemoSettings
from .acquire import msi_geometry, simulate_volume, write_msi, write_standard
from .geometry import msi_to_section
from .phantom import (PhantomParams, SectionTruth, nuclei_points, render_fluorescence, render_he,
                      simulate_section)

# Names of the true fields, which the demo's analytes stand for by role (drug, metabolite, carrier) and the
# nanoparticle label of the fluorescence section.
TRUTH_FIELDS = ("nanoparticle", "drug", "metabolite", "carrier")
# The phantom's ion species of each analyte role (what a demo calibration standard is spiked with).
ROLE_SPECIES = {"drug": "doxorubicin", "metabolite": "doxorubicinol", "carrier": "peg_carrier"}


def sample_seed(base_seed: int, sample: str) -> int:
    """A per-sample seed that depends on the sample name, not its row order."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{base_seed}:{sample}".encode()).digest()[:4], "little")


def generate_sample(sample: str, outputs: dict, truth_dir: str | Path, params: PhantomParams,
                    hierarchy: dict | None = None) -> dict:
    """Generate every modality of one demo sample and its ground truth.

    Parameters
    ----------
    sample : str
        Sample identifier (subject_tumour).
    outputs : dict
        Paths for ``fluorescence``, ``he``, ``msi`` (the .imzML), ``volume``
        and ``volume_mask``.
    truth_dir : path-like
        Folder for the ground truth: ``truth.json`` (parameters, geometry, the true uptake), ``landmarks_msi.csv``,
        ``truth_cells.tsv`` (the true nucleus centres, µm, and their region),
        ``truth_maps.ome.tif`` (10 µm), ``truth_masks.ome.tif`` and ``truth_fields.ome.tif`` (the true
        fields at microscopy resolution, from which :mod:`nanohet.demo.truth` computes the true metrics).
    params : PhantomParams
        With the per-sample ``seed`` already set.
    hierarchy : dict, optional
        Where the sample sits in the cohort and its level effects (:func:`level_effects`), kept in
        ``truth.json`` as ``hierarchy``.

    Returns
    -------
    dict
        The ground-truth record written to ``truth.json``.
    """
    truth_dir = Path(truth_dir)
    # one random stream per acquisition: changing how one modality is rendered leaves the others as they were
    rng = np.random.default_rng(params.seed + 1)
    rng_he, rng_msi, rng_volume = (np.random.default_rng([params.seed, k]) for k in (2, 3, 4))
    truth = simulate_section(params)
    p = truth.spacing_um
    nuclei = nuclei_points(truth, rng)
    write_ome_tiff(outputs["fluorescence"], render_fluorescence(truth, rng, nuclei))
    n = truth.tissue.shape[0]
    he_geom = {
        "rotation_deg": float(rng_he.uniform(-params.he_rotation_deg, params.he_rotation_deg)),
        "translation": rng_he.uniform(-params.he_translation_um, params.he_translation_um, 2).tolist(),
        "centre": [n * p / 2, n * p / 2], "mirrored": bool(params.he_mirrored),
    }
    write_ome_tiff(outputs["he"], render_he(truth, he_geom, rng_he))
    geom = msi_geometry(truth, params, rng_msi)
    acquired = write_msi(Path(outputs["msi"]), truth, params, geom, rng_msi,
                         deterministic_uuid("nanohet-phantom", sample, params.seed))
    vol, vmask, vol_mean = simulate_volume(truth, params, rng_volume)
    write_volume(outputs["volume"], vol)
    write_volume(outputs["volume_mask"], vmask)
    write_table(_landmarks(truth, params, geom, acquired, rng_msi), truth_dir / "landmarks_msi.csv")
    ys, xs = np.nonzero(nuclei)
    write_table(pd.DataFrame({"x_um": xs * p, "y_um": ys * p,
                              "region": np.where(truth.necrosis[ys, xs], "necrosis", "viable")}),
                truth_dir / "truth_cells.tsv")
    _write_truth_images(truth, params, truth_dir)
    record = {
        "sample": sample, "params": asdict(params), "section": truth.params,
        "msi_geometry": geom, "he_geometry": he_geom, "msi_acquired_pixels": int(acquired.sum()),
        "volume_true_mean_uptake_pct_id_per_g": vol_mean, "hierarchy": hierarchy or {},
    }
    write_text_atomic(truth_dir / "truth.json", json.dumps(record, indent=2, sort_keys=True, default=float))
    return record


def generate_control(path: str | Path, params: PhantomParams) -> None:
    """Write one unlabelled control section: a tumour of the demo's kind that received no nanoparticle, rendered
    like the samples (:func:`~.phantom.render_fluorescence`: its nanoparticle channel holds the tissue's
    autofluorescence, background and noise only); ``params.seed`` seeds it."""
    truth = simulate_section(params)
    truth = replace(truth, nanoparticle=np.zeros_like(truth.nanoparticle))
    write_ome_tiff(path, render_fluorescence(truth, np.random.default_rng(params.seed + 5)))


def standard_spikes(rows: list[dict], roles: dict) -> dict:
    """``{phantom ion species: concentration}`` of one demo standard from its sample-sheet rows.

    Parameters
    ----------
    rows : list of dict
        The standard's ``msi_standard`` rows (``analyte``, ``concentration``).
    roles : dict
        ``{analyte name: role}`` of the configured analytes.
    """
    spikes = {}
    for row in rows:
        species = ROLE_SPECIES.get(roles.get(row["analyte"]))
        if species is None:
            raise InputError(f"demo standard {row.get('path')}: analyte {row['analyte']!r} has role "
                             f"{roles.get(row['analyte'])!r}; the demo simulates standards of the roles "
                             f"{sorted(ROLE_SPECIES)} only")
        spikes[species] = float(row["concentration"])
    return spikes


def generate_standard(path: str | Path, spikes: dict, params: PhantomParams) -> None:
    """Write one simulated calibration standard (:func:`~.acquire.write_standard`); ``params.seed`` seeds it."""
    rng = np.random.default_rng(params.seed + 3)
    write_standard(Path(path), spikes, params, rng, deterministic_uuid("nanohet-standard", Path(path).name,
                                                                        params.seed))


def _landmarks(truth: SectionTruth, params: PhantomParams, geom: dict, acquired, rng) -> pd.DataFrame:
    """20 MSI pixel centres on tissue and their true section positions (µm)."""
    p, n = truth.spacing_um, truth.tissue.shape[0]
    ys, xs = np.nonzero(acquired)
    u_all = np.stack([xs, ys], axis=1) * params.msi_pixel_um
    x_all = msi_to_section(u_all, geom)
    ij = np.round(x_all / p).astype(int)
    inside = (ij >= 0).all(1) & (ij < n).all(1)
    on_tissue = np.zeros(len(u_all), bool)
    on_tissue[inside] = truth.tissue[ij[inside, 1], ij[inside, 0]]
    pick = rng.choice(np.flatnonzero(on_tissue), size=min(20, int(on_tissue.sum())), replace=False)
    return pd.DataFrame({
        "msi_x_um": u_all[pick, 0], "msi_y_um": u_all[pick, 1],
        "section_x_um": x_all[pick, 0], "section_y_um": x_all[pick, 1],
    })


def _write_truth_images(truth: SectionTruth, params: PhantomParams, truth_dir: Path) -> None:
    """The true maps at ``truth_pixel_um`` (for figures), the true masks and fields at microscopy resolution."""
    p = truth.spacing_um
    factor = max(int(round(params.truth_pixel_um / p)), 1)
    maps = np.stack([block_reduce_mean(a, factor) for a in
                     (truth.nanoparticle, truth.drug, truth.metabolite, truth.carrier)]).astype(np.float32)
    write_ome_tiff(truth_dir / "truth_maps.ome.tif", SectionImage(
        maps, list(TRUTH_FIELDS), (p * factor,) * 2, block_origin((0.0, 0.0), (p, p), factor)))
    masks = np.stack([truth.tissue, truth.necrosis, truth.vessels, truth.macrophages > 0.5]).astype(np.uint8)
    write_ome_tiff(truth_dir / "truth_masks.ome.tif",
                   SectionImage(masks, ["tissue", "necrosis", "vessels", "macrophages"], (p, p)))
    fields = np.stack([truth.nanoparticle, truth.drug, truth.metabolite, truth.carrier]).astype(np.float32)
    write_ome_tiff(truth_dir / "truth_fields.ome.tif", SectionImage(fields, list(TRUTH_FIELDS), (p, p)))


LEVELS = ("animal", "tumour", "section")
MIN_UPTAKE_FACTOR = 0.05  # a draw below it (over 3 SD out at the demo's SDs) is clipped: uptake stays positive


def level_effects(demo: DemoSettings, subject: str, tumour: str, sample: str) -> dict:
    """The additive effects of a sample's animal, tumour and section on its uptake (fractions of the group mean).

    Each is a normal draw with the SD of ``demo.level_sd`` (0 where not given), seeded by ``demo.seed``, the level
    and the unit's name (the animal ``subject``, the tumour ``subject/tumour``, the section ``sample``): every
    section of one tumour shares its tumour's and its animal's effect whatever the order of the sheet. The
    sample's uptake factor is ``1 + animal + tumour + section`` (:func:`uptake_factor`), so the section means of
    every field are linear in the effects and the configured SDs are the truth of a nested decomposition.
    """
    demo = DemoSettings.coerce(demo)
    keys = {"animal": subject, "tumour": f"{subject}/{tumour}", "section": sample}
    out = {}
    for level in LEVELS:
        sd = float(demo.level_sd.get(level, 0.0))
        rng = np.random.default_rng(sample_seed(int(demo.seed), f"{level}:{keys[level]}"))
        out[level] = float(rng.normal(0.0, sd)) if sd > 0 else 0.0
    return out


def uptake_factor(effects: dict) -> float:
    """``1 + sum(effects)``, at least :data:`MIN_UPTAKE_FACTOR`."""
    return max(1.0 + sum(effects.values()), MIN_UPTAKE_FACTOR)


def params_from_config(demo: DemoSettings, group: str | None, sample: str, subject: str | None = None,
                       tumour: str | None = None) -> PhantomParams:
    """The :class:`PhantomParams` of one sample: ``demo.phantom``, then the group's overrides, the sample's
    seed (from ``demo.seed`` and the sample name), its uptake factor from ``demo.level_sd``
    (:func:`level_effects` of its ``subject`` and ``tumour``; 1 without them) and ``demo.scale`` applied to the
    tumour diameter. ``group`` None (a calibration standard, which belongs to no group): ``demo.phantom`` alone.
    With ``demo.level_sd`` the phantom's own between-sample lognormal (``interpatient_log_sigma``) is off unless
    set explicitly."""
    demo = DemoSettings.coerce(demo)
    if group is not None and group not in demo.groups:
        raise InputError(f"demo sample {sample}: group {group!r} is not defined under demo.groups "
                         f"in the config (defined: {sorted(demo.groups)})")
    base = {**demo.phantom, **(demo.groups[group] if group is not None else {})}
    known = {f.name for f in fields(PhantomParams)}
    unknown = sorted(set(base) - known)
    if unknown:
        raise InputError(f"demo.phantom / demo.groups.{group}: unknown phantom parameter(s) {unknown}; "
                         f"known: {sorted(known)}")
    for key in ("vessel_radius_um", "np_half_distance_um"):
        if key in base:
            base[key] = tuple(base[key])
    factor = 1.0
    if any(float(v) > 0 for v in demo.level_sd.values()):
        base.setdefault("interpatient_log_sigma", 0.0)
        if subject is not None:
            factor = uptake_factor(level_effects(demo, subject, tumour or "", sample))
    params = PhantomParams(**base)
    return replace(params, seed=sample_seed(int(demo.seed), sample), uptake_factor=factor,
                   tumour_diameter_mm=params.tumour_diameter_mm * float(demo.scale))
