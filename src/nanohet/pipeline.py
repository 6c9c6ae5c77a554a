"""One function per workflow step: read inputs, call the library, write outputs.

The Snakemake rules call these through thin scripts; tests call them
directly. Each takes file paths and plain config dictionaries and writes its
outputs atomically.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from . import microscopy as mic
from .atomic import atomic_path, write_table
from .errors import InputError
from .image import SectionImage, block_origin, block_reduce_mean, to_sitk
from .imzml import read_imzml_index
from .landmarks import Landmarks, landmark_transform, read_landmarks
from .msi import IonTarget, clip_hotspots, extract_ion_images, normalise
from .ometiff import read_ome_tiff, write_ome_tiff
from .quantify import distance_to_mask_um, map_metrics
from .regimage import channel_sum, first_principal_component, tissue_distance_map
from .volume import read_volume, resample_to_grid, write_volume
from .reggraph import compose, invert
from .registration import (RegistrationSettings, deformation_summary, dice, prepare_image, reference_grid,
                           register, register_rigid_3d, resample_to, target_registration_error)

log = logging.getLogger("nanohet")

MASK_CHANNELS = ["tissue", "necrosis", "viable", "vessels"]


def _channels_arg(channels: str | None):
    return [c.strip() for c in channels.split(",")] if channels else None


def _float_or_none(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return float(value)


# ----------------------------------------------------------------------------- demo

def make_demo_sample(sample: str, group: str, demo_cfg: dict, thresholds: dict, outputs: dict,
                     truth_dir: str) -> None:
    """Simulate one demo sample (all modalities) and its ground truth."""
    from .phantom import generate_sample, params_from_config

    params = params_from_config(demo_cfg, group, sample)
    log.info("simulating %s (group %s, seed %d)", sample, group, params.seed)
    record = generate_sample(sample, outputs, truth_dir, params, thresholds=thresholds)
    log.info("%s: %d vessels, NP half-distance %.1f µm, dose factor %.2f, %d MSI spectra",
             sample, record["section"]["n_vessels"], record["section"]["np_half_distance_um"],
             record["section"]["dose_factor"], record["msi_acquired_pixels"])


# ----------------------------------------------------------------------------- MSI

def msi_unit(msi_cfg: dict) -> str:
    """Unit of the normalised analyte images for a given MSI config."""
    method = msi_cfg["normalisation"]
    if method == "internal_standard":
        return "ug/g-equivalent" if msi_cfg["internal_standard"].get("concentration") else "ratio to standard"
    return {"none": "counts", "tic": "fraction of TIC", "rms": "ratio to RMS",
            "median": "ratio to median"}[method]


def extract_msi(imzml: str, msi_cfg: dict, out_ions: str, out_stats: str, out_spectrum: str,
                pixel_size_um: float | None = None, sample: str = "", out_index: str | None = None,
                threads: int = 1) -> None:
    """Ion images of the configured analytes, normalised, as an OME-TIFF stack.

    Channels: one per analyte (normalised), ``TIC``, the internal standard
    (raw counts, when configured), ``acquired`` (1 where a spectrum exists),
    the lock-mass ppm error (when configured) and the top-N mean-spectrum
    peaks (raw counts). Non-acquired pixels are NaN in every signal channel.
    The parsed imzML index is cached to ``out_index`` when given.
    """
    try:
        import numba

        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    except ImportError:
        pass
    try:
        index = read_imzml_index(imzml)
    except InputError as exc:
        raise InputError(f"sample {sample}: {exc}" if sample else str(exc)) from None
    if out_index:
        index.save(out_index)
    analytes = [IonTarget(a["name"], float(a["mz"]), float(a["ppm"])) for a in msi_cfg["analytes"]]
    targets = list(analytes)
    is_cfg = msi_cfg.get("internal_standard")
    if is_cfg:
        targets.append(IonTarget(is_cfg["name"], float(is_cfg["mz"]), float(is_cfg["ppm"])))
    method = msi_cfg["normalisation"]
    if method == "internal_standard" and not is_cfg:
        raise InputError("msi.normalisation is internal_standard but msi.internal_standard is not configured")
    log.info("%s: %d spectra (%s, m/z %s, intensity %s), pixel %s µm; %d targets; normalisation %s",
             imzml, index.n_spectra, "continuous" if index.continuous else "processed",
             index.mz_dtype, index.int_dtype, index.pixel_size or pixel_size_um, len(targets), method)

    def progress(done, total):
        log.info("  %d / %d spectra (%.0f %%)", done, total, 100.0 * done / total)

    lock = msi_cfg.get("lock_mass")
    lock = IonTarget(lock.get("name", "lock_mass"), float(lock["mz"]), float(lock["ppm"])) if lock else None
    res = extract_ion_images(index, targets, pixel_size_um=pixel_size_um,
                             reduce=msi_cfg.get("reduce", "sum"), lock_mass=lock,
                             top_n=int(msi_cfg.get("top_n_peaks", 0)), median=method == "median",
                             mean_spectrum_bin_mz=float(msi_cfg.get("mean_spectrum_bin_mz", 0.005)),
                             chunk_peaks=int(msi_cfg.get("chunk_peaks", 4_000_000)), progress=progress)
    if lock is not None:
        found = np.isfinite(res.lock_mass_ppm[res.acquired])
        log.info("lock mass %.4f: found in %.1f %% of spectra, median |error| %.2f ppm", lock.mz,
                 100 * found.mean(), np.nanmedian(np.abs(res.lock_mass_ppm)) if found.any() else np.nan)
    if is_cfg:
        is_img = res.images[is_cfg["name"]]
        if not np.nanmax(np.nan_to_num(is_img, nan=0.0)) > 0:
            raise InputError(f"{imzml} (sample {sample}): the internal standard {is_cfg['name']} "
                             f"(m/z {is_cfg['mz']} ± {is_cfg['ppm']} ppm) has no signal in any pixel")
    channels, planes, rows = [], [], []
    unit = msi_unit(msi_cfg)
    for t in analytes:
        img = normalise(res.images[t.name], method, msi=res, reference=is_cfg["name"] if is_cfg else None)
        if method == "internal_standard" and is_cfg.get("concentration"):
            img = img * float(is_cfg["concentration"])
        img = clip_hotspots(img, msi_cfg.get("hotspot_percentile"))
        channels.append(t.name)
        planes.append(img)
        finite = img[np.isfinite(img)]
        raw = res.images[t.name][res.acquired]
        rows.append({
            "analyte": t.name, "mz": t.mz, "ppm": t.ppm, "normalisation": method, "unit": unit,
            "n_acquired": int(res.acquired.sum()), "fraction_detected": float((raw > 0).mean()),
            "mean": float(finite.mean()) if finite.size else np.nan,
            "median": float(np.median(finite)) if finite.size else np.nan,
            "p99": float(np.percentile(finite, 99)) if finite.size else np.nan,
            "max": float(finite.max()) if finite.size else np.nan,
        })
    channels.append("TIC")
    planes.append(res.tic)
    if is_cfg:
        channels.append(is_cfg["name"])
        planes.append(res.images[is_cfg["name"]])
    channels.append("acquired")
    planes.append(res.acquired.astype(np.float64))
    if lock is not None:
        channels.append("lock_mass_ppm")
        planes.append(res.lock_mass_ppm)
    for name in res.top_peaks:
        channels.append(name)
        planes.append(res.images[name])
    stack = SectionImage(np.stack(planes).astype(np.float32), channels, res.pixel_size, res.origin)
    write_ome_tiff(out_ions, stack)
    write_table(pd.DataFrame(rows), out_stats)
    mz, mean = res.mean_spectrum
    keep = mean > 0
    write_table(pd.DataFrame({"mz": mz[keep], "mean_intensity": mean[keep]}), out_spectrum)
    log.info("wrote %s with channels %s", out_ions, channels)


# ----------------------------------------------------------------------------- microscopy

def role_channel(image: SectionImage, mic_cfg: dict, role: str, path: str) -> np.ndarray:
    """The channel playing ``role`` (nuclei, vessels, ...) with a clear error if absent."""
    name = mic_cfg["channels"].get(role)
    if name is None:
        raise InputError(f"microscopy.channels.{role} is not configured")
    if name not in image.channels:
        raise InputError(f"{path}: channel {name!r} (configured for role {role}) is not in the file; "
                         f"its channels are {image.channels}")
    return image.channel(name)


def preprocess_microscopy(fluorescence: str, mic_cfg: dict, out_masks: str, out_stats: str,
                          pixel_size_um: float | None = None, channels: str | None = None,
                          sample: str = "") -> None:
    """Tissue, necrosis, viable and vessel masks of a fluorescence section, plus section statistics."""
    img = read_ome_tiff(fluorescence, pixel_size_um=pixel_size_um, channel_names=_channels_arg(channels))
    p = float(img.spacing[0])
    nuclei = role_channel(img, mic_cfg, "nuclei", fluorescence)
    cd31 = role_channel(img, mic_cfg, "vessels", fluorescence)
    tissue = mic.tissue_mask(nuclei, p, mic_cfg.get("tissue_smooth_um", 10.0))
    necrosis = mic.necrosis_mask(nuclei, tissue, p, mic_cfg.get("necrosis_smooth_um", 30.0))
    vessels = mic.vessel_mask(cd31, tissue & ~necrosis, p, mic_cfg.get("vessel_min_area_um2", 20.0))
    viable = tissue & ~necrosis
    masks = np.stack([tissue, necrosis, viable, vessels]).astype(np.uint8)
    write_ome_tiff(out_masks, SectionImage(masks, list(MASK_CHANNELS), img.spacing, img.origin))
    from scipy import ndimage

    n_vessels = ndimage.label(vessels)[1]
    viable_mm2 = viable.sum() * p * p / 1e6
    stats = {
        "sample": sample, "tissue_area_mm2": tissue.sum() * p * p / 1e6,
        "necrotic_fraction": necrosis.sum() / max(tissue.sum(), 1),
        "vessel_count": n_vessels, "vessel_density_per_mm2": n_vessels / viable_mm2 if viable_mm2 else np.nan,
        "vessel_area_fraction": vessels.sum() / max(viable.sum(), 1),
    }
    if not vessels.any():
        log.warning("%s: no vessels found in channel %s", fluorescence, mic_cfg["channels"]["vessels"])
    write_table(pd.DataFrame([stats]), out_stats)
    log.info("%s: tissue %.2f mm², necrotic fraction %.2f, %d vessels (%.0f /mm² viable)", fluorescence,
             stats["tissue_area_mm2"], stats["necrotic_fraction"], n_vessels, stats["vessel_density_per_mm2"])


# ----------------------------------------------------------------------------- registration

def _settings(cfg: dict, base: RegistrationSettings, keys, sigma_key: str, section: str) -> RegistrationSettings:
    """``base`` updated with the config's values of ``keys`` and its smoothing sigmas (``sigma_key``)."""
    for key in keys:
        if key in cfg:
            setattr(base, key, cfg[key])
    if sigma_key in cfg:
        base.smoothing_sigmas = list(cfg[sigma_key])
    if len(base.smoothing_sigmas) != len(base.shrink_factors):
        raise InputError(f"{section}.{sigma_key} needs one value per {section}.shrink_factors level")
    return base


def registration_settings(reg_cfg: dict) -> RegistrationSettings:
    """Map the config's ``registration`` section (or one edge's settings) to :class:`RegistrationSettings`."""
    settings = _settings(reg_cfg, RegistrationSettings(),
                         ("transform", "histogram_bins", "sampling_percentage", "seed", "shrink_factors",
                          "iterations", "rotation_search_deg", "flip_search", "search_candidates", "centring",
                          "threads", "bspline_iterations"),
                         "smoothing_sigmas_um",
                         "registration")
    if "bspline_grid_spacing_um" in reg_cfg:
        settings.bspline_grid_spacing = float(reg_cfg["bspline_grid_spacing_um"])
    if reg_cfg.get("rotation_search_step_deg"):  # a full turn in steps: replaces rotation_search_deg
        step = float(reg_cfg["rotation_search_step_deg"])
        settings.rotation_search_deg = [float(a) for a in np.arange(-180.0, 180.0, step)]
    return settings


def analysis_grid(fluo: SectionImage, spacing_um: float):
    """Block factor, shape, spacing and origin of the analysis grid over a microscopy image."""
    factor = max(int(round(spacing_um / fluo.spacing[0])), 1)
    shape = (fluo.shape_yx[0] // factor, fluo.shape_yx[1] // factor)
    spacing = (fluo.spacing[0] * factor, fluo.spacing[1] * factor)
    return factor, shape, spacing, block_origin(fluo.origin, fluo.spacing, factor)


def _msi_tissue(tic: np.ndarray, acquired: np.ndarray, spacing: float) -> np.ndarray:
    filled = np.where(acquired, tic, np.nanmin(tic))
    return mic.tissue_mask(np.nan_to_num(filled), spacing, smooth_um=spacing)


DEFAULT_IMAGES = {"msi": "tic", "fluorescence": "nuclei", "he": "haematoxylin"}


def edge_settings(reg_cfg: dict, moving: str, fixed: str) -> dict:
    """Settings of one edge: ``registration`` overridden by the edge's own keys in ``registration.edges``.

    ``images`` (what each modality shows to the metric) is merged key by key.
    """
    base = {k: v for k, v in reg_cfg.items() if k != "edges"}
    over = next((e for e in reg_cfg.get("edges", []) if e.get("moving") == moving and e.get("fixed") == fixed), {})
    merged = {**base, **{k: v for k, v in over.items() if k not in ("moving", "fixed")}}
    merged["images"] = {**DEFAULT_IMAGES, **base.get("images", {}), **over.get("images", {})}
    return merged


@dataclass
class RegistrationInput:
    """A section as the metric sees it, in its own physical frame (µm).

    Attributes
    ----------
    image : sitk.Image
        Registration image scaled to [0, 1] at the edge's working spacing.
    tissue : sitk.Image
        Float 0/1 tissue mask on the same grid (for the Dice QC).
    valid : sitk.Image or None
        uint8 mask of valid pixels (MSI: acquired), used by the metric.
    label : str
        What the image is, for logs.
    """

    image: sitk.Image
    tissue: sitk.Image
    valid: sitk.Image | None
    label: str


def registration_input(modality: str, files: dict, cfg: dict, mic_cfg: dict, sample: str = "",
                       pixel_size_um: float | None = None, channels: str | None = None) -> RegistrationInput:
    """Load one section for an edge.

    Parameters
    ----------
    modality : {"msi", "fluorescence", "he"}
    files : dict
        ``msi``: ``{"image": ion stack}``; ``fluorescence``: ``{"image": OME-TIFF, "masks": masks}``;
        ``he``: ``{"image": RGB OME-TIFF}``.
    cfg : dict
        Edge settings (:func:`edge_settings`): ``images``, ``working_spacing_um``, ``distance_clip_um``.
    pixel_size_um, channels
        Sample-sheet values for files that lack them.
    """
    kind = cfg["images"][modality]
    clip = float(cfg.get("distance_clip_um", 200.0))
    spacing_um = float(cfg.get("working_spacing_um", 15.0))
    path = files["image"]
    if modality == "msi":
        stack = read_ome_tiff(path)
        acquired = stack.channel("acquired") > 0
        image = prepare_image(msi_registration_image(stack, kind, path, clip), stack.spacing, stack.origin)
        valid = sitk.GetImageFromArray(acquired.astype(np.uint8))
        valid.CopyInformation(image)
        tissue = _msi_tissue(stack.channel("TIC"), acquired, stack.spacing[0]).astype(np.float32)
        return RegistrationInput(image, to_sitk(tissue, stack.spacing, stack.origin), valid, f"MSI {kind}")
    if modality == "fluorescence":
        fluo = read_ome_tiff(path, pixel_size_um=pixel_size_um, channel_names=_channels_arg(channels))
        masks = read_ome_tiff(files["masks"])
        f = max(int(round(spacing_um / fluo.spacing[0])), 1)
        spacing, origin = (fluo.spacing[0] * f, fluo.spacing[1] * f), block_origin(fluo.origin, fluo.spacing, f)
        arr = section_registration_image(fluo, masks, mic_cfg, kind, path, clip)
        tissue = (block_reduce_mean(masks.channel("tissue").astype(np.float32), f) >= 0.5).astype(np.float32)
        return RegistrationInput(prepare_image(block_reduce_mean(arr, f), spacing, origin),
                                 to_sitk(tissue, spacing, origin), None, f"fluorescence {kind}")
    if modality == "he":
        he_img = read_ome_tiff(path, pixel_size_um=pixel_size_um)
        if he_img.channels != ["R", "G", "B"]:
            raise InputError(f"{path}: expected an RGB H&E image, found channels {he_img.channels}")
        f = max(int(round(spacing_um / he_img.spacing[0])), 1)
        spacing, origin = (he_img.spacing[0] * f, he_img.spacing[1] * f), block_origin(he_img.origin, he_img.spacing, f)
        od = block_reduce_mean(255.0 - he_img.data.astype(np.float32).mean(axis=0), f)
        tissue = mic.tissue_mask(od, spacing[0], smooth_um=spacing[0])
        if kind == "tissue_distance":
            arr = _distance_image(tissue, spacing, clip, path, sample)
        elif kind == "haematoxylin":
            arr = block_reduce_mean(mic.haematoxylin(he_img.data), f)
        else:
            raise InputError(f"registration.images.he must be haematoxylin or tissue_distance, got {kind!r}")
        return RegistrationInput(prepare_image(arr, spacing, origin), to_sitk(tissue.astype(np.float32), spacing, origin),
                                 None, f"H&E {kind}")
    raise InputError(f"no registration input for modality {modality!r}")


def register_edge(sample: str, moving: str, moving_files: dict, fixed: str, fixed_files: dict, reg_cfg: dict,
                  mic_cfg: dict, out_transform: str, out_qc: str, out_figure: str | None = None,
                  landmarks: str | None = None, options: dict | None = None) -> None:
    """Register one edge of the sample's registration graph (``moving`` onto ``fixed``).

    Settings are :func:`edge_settings`; ``options`` holds per-modality sample-sheet values
    (``{modality: {"pixel_size_um": ..., "channels": ...}}``). With ``landmarks`` (a CSV, see
    :mod:`nanohet.landmarks`: fixed points in the fixed section's frame, moving points in the moving
    section's frame, µm) the fit starts from the landmark transform and the QC table reports their
    error. Writes the ITK transform (fixed frame -> moving frame), the QC table and figure.
    """
    options = options or {}
    cfg = edge_settings(reg_cfg, moving, fixed)
    settings = registration_settings(cfg)
    mov = registration_input(moving, moving_files, cfg, mic_cfg, sample, **options.get(moving, {}))
    fix = registration_input(fixed, fixed_files, cfg, mic_cfg, sample, **options.get(fixed, {}))
    points = read_landmarks(landmarks, sample) if landmarks else None
    log.info("%s: registering %s (%s) onto %s (%s), %s, %d start angles, mirror search %s%s", sample, mov.label,
             moving_files["image"], fix.label, fixed_files["image"], settings.transform,
             len(settings.rotation_search_deg), settings.flip_search, ", landmark start" if points else "")
    result = register(fix.image, mov.image, settings, moving_mask=mov.valid, initial_transform=_landmark_start(points))
    _finish_edge(sample, f"{moving}->{fixed}", settings, result, fix, mov, cfg, out_qc, out_figure, points)
    with atomic_path(out_transform) as tmp:
        sitk.WriteTransform(result.transform, str(tmp))


def to_reference(modality: str, source: str, edge_transforms: list[str], fluorescence: str, quant_cfg: dict,
                 out_transform: str, out_registered: str, masks: str | None = None,
                 out_masks_on_msi: str | None = None, pixel_size_um: float | None = None,
                 channels: str | None = None, source_pixel_size_um: float | None = None) -> None:
    """Compose a section's chain of edge transforms and resample it once onto the reference grid.

    Parameters
    ----------
    modality : {"msi", "he"}
    source : str
        The MSI ion stack or the H&E image.
    edge_transforms : list of str
        Edge transform files from the edge onto the reference outwards (see
        :func:`nanohet.reggraph.compose`).
    fluorescence : str
        The reference section (defines the analysis grid with ``quantify.analysis_spacing_um``).
    out_masks_on_msi : str, optional
        MSI only: microscopy masks mapped back onto the native MSI grid (needs ``masks``).
    """
    transform = compose([sitk.ReadTransform(t) for t in edge_transforms])
    fluo = read_ome_tiff(fluorescence, pixel_size_um=pixel_size_um, channel_names=_channels_arg(channels))
    _, shape, gspacing, origin = analysis_grid(fluo, quant_cfg.get("analysis_spacing_um", 10.0))
    ref = reference_grid(shape, gspacing, origin)
    if modality == "msi":
        stack = read_ome_tiff(source)
        acquired = stack.channel("acquired") > 0
        planes = []
        for name in stack.channels:
            arr = stack.channel(name).astype(np.float64)
            if name != "acquired":
                arr = np.where(acquired, arr, np.nan)
            planes.append(resample_to(to_sitk(arr, stack.spacing, stack.origin), ref, transform))
        planes = np.stack(planes)
        acq_idx = stack.channels.index("acquired")
        planes[acq_idx] = np.nan_to_num(planes[acq_idx], nan=0.0)
        registered = SectionImage(planes.astype(np.float32), list(stack.channels), gspacing, origin)
        if out_masks_on_msi:
            write_ome_tiff(out_masks_on_msi, masks_on_msi_grid(read_ome_tiff(masks), stack, transform))
    elif modality == "he":
        he_img = read_ome_tiff(source, pixel_size_um=source_pixel_size_um)
        gf = max(int(round(gspacing[0] / he_img.spacing[0])), 1)  # H&E block factor to the analysis spacing
        g_spacing = (he_img.spacing[0] * gf, he_img.spacing[1] * gf)
        g_origin = block_origin(he_img.origin, he_img.spacing, gf)
        planes = [resample_to(to_sitk(block_reduce_mean(he_img.data[c], gf), g_spacing, g_origin), ref, transform,
                              default=255.0) for c in range(3)]
        registered = SectionImage(np.clip(np.rint(np.stack(planes)), 0, 255).astype(np.uint8), ["R", "G", "B"],
                                  gspacing, origin)
    else:
        raise InputError(f"no resampling into the reference for modality {modality!r}")
    write_ome_tiff(out_registered, registered)
    with atomic_path(out_transform) as tmp:
        sitk.WriteTransform(transform, str(tmp))


def _one_edge(modality, source, fluorescence, masks, reg_cfg, quant_cfg, mic_cfg, out_transform, out_registered,
              out_qc, sample, pixel_size_um, channels, out_figure, landmarks, source_pixel_size_um=None,
              out_masks_on_msi=None):
    edge_tx = str(Path(out_transform).with_name(Path(out_transform).stem + "_edge.tfm"))
    options = {"fluorescence": {"pixel_size_um": pixel_size_um, "channels": channels},
               modality: {"pixel_size_um": source_pixel_size_um} if modality == "he" else {}}
    try:
        register_edge(sample, modality, {"image": source}, "fluorescence", {"image": fluorescence, "masks": masks},
                      reg_cfg, mic_cfg, edge_tx, out_qc, out_figure, landmarks, options)
        to_reference(modality, source, [edge_tx], fluorescence, quant_cfg, out_transform, out_registered, masks,
                     out_masks_on_msi, pixel_size_um, channels, source_pixel_size_um)
    finally:
        Path(edge_tx).unlink(missing_ok=True)


def register_msi(ions: str, fluorescence: str, masks: str, reg_cfg: dict, quant_cfg: dict,
                 mic_cfg: dict, out_transform: str, out_registered: str, out_qc: str,
                 sample: str = "", pixel_size_um: float | None = None, channels: str | None = None,
                 out_figure: str | None = None, out_masks_on_msi: str | None = None,
                 landmarks: str | None = None) -> None:
    """One-edge graph: MSI onto the fluorescence section, resampled to the analysis grid.

    :func:`register_edge` then :func:`to_reference`; the workflow runs the two as separate steps
    so that edges can form chains.
    """
    _one_edge("msi", ions, fluorescence, masks, reg_cfg, quant_cfg, mic_cfg, out_transform, out_registered, out_qc,
              sample, pixel_size_um, channels, out_figure, landmarks, out_masks_on_msi=out_masks_on_msi)


def _distance_image(tissue: np.ndarray, spacing, clip: float, path: str, sample: str = "") -> np.ndarray:
    try:
        return tissue_distance_map(tissue, spacing, clip)
    except ValueError as exc:
        raise InputError(f"sample {sample}: {path}: no tissue distance map for registration ({exc})") from exc


def msi_registration_image(stack: SectionImage, name: str, path: str, clip_um: float = 200.0) -> np.ndarray:
    """The MSI image registration uses (``registration.msi_image``).

    ``tic``; ``pca``: first principal component of the top-N peak images
    (needs ``msi.top_n_peaks >= 2``); ``tissue_distance``: signed distance
    to the MSI tissue outline (µm, clipped at ``clip_um``); or any channel
    name of the stack (an analyte).
    """
    acquired = stack.channel("acquired") > 0
    key = name.lower()
    if key == "tic":
        return stack.channel("TIC")
    if key == "pca":
        names = [c for c in stack.channels if c.startswith("mz")]
        if len(names) < 2:
            raise InputError(f"{path}: registration.msi_image pca needs at least 2 top-peak images "
                             f"(set msi.top_n_peaks >= 2); the stack has {len(names)}")
        return first_principal_component(np.stack([stack.channel(c) for c in names]), acquired)
    if key == "tissue_distance":
        tissue = _msi_tissue(stack.channel("TIC"), acquired, stack.spacing[0])
        return _distance_image(tissue, stack.spacing, clip_um, path)
    if name not in stack.channels:
        raise InputError(f"{path}: registration.msi_image {name!r} is neither tic, pca, tissue_distance nor a "
                         f"channel of the stack ({stack.channels})")
    return stack.channel(name)


def section_registration_image(image: SectionImage, masks: SectionImage, mic_cfg: dict, spec, path: str,
                               clip_um: float = 200.0) -> np.ndarray:
    """The fluorescence image registration uses (``registration.fixed_channel``).

    A channel role (``nuclei``...), a list of roles (their sum, each scaled
    to [0, 1] first), or ``tissue_distance`` (signed distance to the tissue
    mask's outline, µm, clipped at ``clip_um``).
    """
    if spec == "tissue_distance":
        return _distance_image(masks.channel("tissue") > 0, masks.spacing, clip_um, path)
    roles = [spec] if isinstance(spec, str) else list(spec)
    planes = [role_channel(image, mic_cfg, role, path) for role in roles]
    return planes[0] if len(planes) == 1 else channel_sum(planes)


def masks_on_msi_grid(masks: SectionImage, msi: SectionImage, transform: sitk.Transform) -> SectionImage:
    """Microscopy masks averaged over each native MSI pixel's footprint.

    Each mask (and the distance to the nearest vessel, µm) is box-averaged over
    one MSI pixel at microscopy resolution, then sampled at the MSI pixel centres
    mapped into the section through the inverse registration transform. Channels:
    ``tissue_fraction``, ``viable_fraction``, ``vessel_distance_um``; on the MSI
    grid (spacing and origin of the MSI stack), so MSI statistics can be computed
    on native MSI pixels.
    """
    from scipy import ndimage

    size = max(int(round(msi.spacing[0] / masks.spacing[0])), 1)
    dist = distance_to_mask_um(masks.channel("vessels") > 0, masks.spacing)
    inverse = invert(transform)  # MSI -> section (numerically for a B-spline deformation)
    ref = reference_grid(msi.shape_yx, msi.spacing, msi.origin)
    planes = []
    for arr in (masks.channel("tissue"), masks.channel("viable"), dist):
        avg = ndimage.uniform_filter(np.asarray(arr, dtype=np.float32), size=size)
        planes.append(resample_to(to_sitk(avg, masks.spacing, masks.origin), ref, inverse))
    return SectionImage(np.stack(planes).astype(np.float32), ["tissue_fraction", "viable_fraction",
                                                              "vessel_distance_um"], msi.spacing, msi.origin)


def _landmark_start(points: Landmarks | None):
    """Initial transform from the ``init`` landmark pairs (None without landmarks)."""
    return None if points is None else landmark_transform(points.fixed[points.init], points.moving[points.init])


def _landmark_qc(points: Landmarks | None, start, result) -> dict:
    """Landmark TRE (µm) at the start pose and after registration, on the ``check`` points."""
    if points is None or not points.check.any():
        return {"landmark_points": 0, "landmark_tre_before_um": np.nan, "landmark_tre_median_um": np.nan,
                "landmark_tre_max_um": np.nan, "landmark_check": ""}
    f, m = points.fixed[points.check], points.moving[points.check]
    after = target_registration_error(result.transform, f, m)
    return {"landmark_points": int(points.check.sum()),
            "landmark_tre_before_um": float(np.median(target_registration_error(start, f, m))),
            "landmark_tre_median_um": float(np.median(after)), "landmark_tre_max_um": float(after.max()),
            # error on the points that also set the start pose is a fiducial error, an optimistic TRE
            "landmark_check": "independent" if points.independent_check else "init points"}


def _finish_edge(sample, edge, settings, result, fix: RegistrationInput, mov: RegistrationInput, cfg, out_qc,
                 out_figure, points: Landmarks | None = None) -> None:
    """QC table and figure of one registration edge (on the fixed grid); flag (or fail) an edge worse than its start.

    The start pose is the landmark transform when landmarks are given, else the centring
    (``registration.centring``: moments or geometry).
    """
    from .figures import registration_qc

    start = sitk.CenteredTransformInitializer(
        fix.image, mov.image, sitk.Euler2DTransform(),
        sitk.CenteredTransformInitializerFilter.GEOMETRY if settings.centring == "geometry"
        else sitk.CenteredTransformInitializerFilter.MOMENTS)
    if points is not None:
        start = _landmark_start(points)
    grid = fix.image
    tissue_fixed = sitk.GetArrayFromImage(fix.tissue) >= 0.5
    dice_before = dice(tissue_fixed, np.nan_to_num(resample_to(mov.tissue, grid, start)) >= 0.5)
    dice_after = dice(tissue_fixed, np.nan_to_num(resample_to(mov.tissue, grid, result.transform)) >= 0.5)
    min_dice = float(cfg.get("min_dice", 0.0))
    # masks of two modalities at different resolutions disagree by ~0.01 even when aligned
    tolerance = float(cfg.get("dice_tolerance", 0.02))
    deformation = deformation_summary(result.transform, grid)
    folds = bool(deformation["jacobian_min"] <= 0)  # NaN (no deformation) compares False
    # two different orientations that fit (almost) equally well: the search may have picked the wrong one
    ambiguous = bool(result.pose_margin < float(cfg.get("min_pose_margin", 0.0)))
    reasons = [text for bad, text in (
        (result.metric_after > result.metric_before, "metric worse than at the start"),
        (dice_after < dice_before - tolerance, "tissue Dice dropped"),
        (dice_after < min_dice, f"tissue Dice below {min_dice}"),
        (folds, "B-spline deformation folds"),
        (ambiguous, "another orientation fits almost as well")) if bad]
    flagged = bool(reasons)
    qc = {
        "sample": sample, "edge": edge, "moving_image": mov.label, "fixed_image": fix.label,
        "transform": settings.transform, "metric": "mattes_mi",
        "metric_before": result.metric_before, "metric_after": result.metric_after,
        "dice_before": dice_before, "dice_after": dice_after, "initial_rotation_deg": result.initial_rotation_deg,
        "flipped": result.flipped, "pose_margin": result.pose_margin, "iterations": result.iterations,
        "stop_condition": result.stop_condition,
        "initialisation": "landmarks" if points is not None else settings.centring, **_landmark_qc(points, start, result),
        "deformation_max_um": deformation["deformation_max"], "jacobian_min": deformation["jacobian_min"],
        "flagged": flagged, "flag_reason": "; ".join(reasons),
        # the one column that differs between reruns; `nanohet verify` compares tables without it
        "run_time_s": round(result.runtime_s, 1),
    }
    log.info("%s %s: MI %.4f -> %.4f, tissue Dice %.3f -> %.3f, start rotation %.0f deg%s, %d iterations in %.1f s",
             sample, edge, result.metric_before, result.metric_after, dice_before, dice_after,
             result.initial_rotation_deg, " (mirrored)" if result.flipped else "", result.iterations,
             result.runtime_s)
    if np.isfinite(deformation["deformation_max"]):
        log.info("%s %s: B-spline deformation up to %.1f µm, smallest Jacobian determinant %.3f%s", sample, edge,
                 deformation["deformation_max"], deformation["jacobian_min"], " (FOLDS)" if folds else "")
    if out_figure:
        fixed_arr = sitk.GetArrayFromImage(grid)
        before = resample_to(mov.image, grid, start, default=0.0)
        after = resample_to(mov.image, grid, result.transform, default=0.0)
        sp, org, shape = grid.GetSpacing(), grid.GetOrigin(), tissue_fixed.shape
        extent = [(org[0] - sp[0] / 2) / 1000, (org[0] + (shape[1] - 0.5) * sp[0]) / 1000,
                  (org[1] + (shape[0] - 0.5) * sp[1]) / 1000, (org[1] - sp[1] / 2) / 1000]
        registration_qc(out_figure, f"{sample} {edge}", fixed_arr, before, after, tissue_fixed, extent, qc)
    if flagged:
        message = (f"sample {sample}: registration {edge} is flagged: {'; '.join(reasons)} (MI "
                   f"{result.metric_before:.4f} -> {result.metric_after:.4f}, tissue Dice {dice_before:.3f} -> "
                   f"{dice_after:.3f}, bound {min_dice}, pose margin {result.pose_margin:.4f})")
        log.warning(message)
        if cfg.get("fail_on_flag", False):
            raise InputError(message + "; registration.fail_on_flag is true")
    write_table(pd.DataFrame([qc]), out_qc)


def register_he(he: str, fluorescence: str, masks: str, reg_cfg: dict, quant_cfg: dict, mic_cfg: dict,
                out_transform: str, out_registered: str, out_qc: str, out_figure: str | None = None,
                sample: str = "", pixel_size_um: float | None = None, channels: str | None = None,
                he_pixel_size_um: float | None = None, landmarks: str | None = None) -> None:
    """One-edge graph: H&E onto the fluorescence section, the RGB image resampled to the analysis grid."""
    _one_edge("he", he, fluorescence, masks, reg_cfg, quant_cfg, mic_cfg, out_transform, out_registered, out_qc,
              sample, pixel_size_um, channels, out_figure, landmarks, source_pixel_size_um=he_pixel_size_um)


# ----------------------------------------------------------------------------- quantification

def quantify_section(fluorescence: str, masks: str, registered: str, msi_cfg: dict, mic_cfg: dict,
                     quant_cfg: dict, out_metrics: str, out_profiles: str, sample: str = "",
                     pixel_size_um: float | None = None, channels: str | None = None,
                     ions: str | None = None, masks_on_msi: str | None = None) -> None:
    """Heterogeneity metrics of the nanoparticle (microscopy) and MSI analyte maps of one section.

    MSI analytes are measured on the reference grid (modality ``msi``) and, when ``ions`` and
    ``masks_on_msi`` are given, also on the native MSI pixels (modality ``msi_native``: a pixel
    counts as tissue/viable when at least half its footprint is).
    """
    fluo = read_ome_tiff(fluorescence, pixel_size_um=pixel_size_um, channel_names=_channels_arg(channels))
    m = read_ome_tiff(masks)
    reg = read_ome_tiff(registered)
    tissue, viable, vessels = (m.channel(c) > 0 for c in ("tissue", "viable", "vessels"))
    if not tissue.any():
        raise InputError(f"{masks} (sample {sample}): the tissue mask is empty")
    thresholds = quant_cfg.get("coverage_thresholds", {})
    bin_um, max_um = quant_cfg.get("profile_bin_um", 10.0), quant_cfg.get("profile_max_um", 150.0)
    dist = distance_to_mask_um(vessels, fluo.spacing)
    rows, profiles = [], []

    def add(modality, analyte, unit, values, t_mask, v_mask, d):
        metrics, profile = map_metrics(values, t_mask, v_mask, d, thresholds.get(analyte), bin_um, max_um)
        units = {"mean": unit, "median": unit, "cv": "1", "coverage": "fraction", "n_pixels": "pixels",
                 "l50_um": "um", "auc_100um": f"{unit} x um"}
        for k, v in metrics.items():
            rows.append({"sample": sample, "modality": modality, "analyte": analyte, "metric": k,
                         "value": v, "unit": units[k]})
        profile.insert(0, "analyte", analyte)
        profile.insert(0, "modality", modality)
        profile.insert(0, "sample", sample)
        profiles.append(profile)

    np_img = role_channel(fluo, mic_cfg, "nanoparticle", fluorescence).astype(np.float64)
    np_img = np_img - mic.background_level(np_img, tissue)
    add("fluorescence", "nanoparticle", "counts", np_img, tissue, viable, dist)

    factor, shape, _, _ = analysis_grid(fluo, quant_cfg.get("analysis_spacing_um", 10.0))
    if reg.shape_yx != shape:
        raise InputError(f"{registered}: grid {reg.shape_yx} does not match the analysis grid {shape}")
    tissue_g = block_reduce_mean(tissue.astype(np.float32), factor) >= 0.5
    viable_g = block_reduce_mean(viable.astype(np.float32), factor) >= 0.5
    dist_g = block_reduce_mean(dist, factor)
    covered = reg.channel("acquired") > 0.5
    frac = float((covered & tissue_g).sum() / max(tissue_g.sum(), 1))
    if frac < 0.9:
        log.warning("%s: MSI acquisition covers only %.0f %% of the tissue", sample, 100 * frac)
    unit = msi_unit(msi_cfg)
    for a in msi_cfg["analytes"]:
        add("msi", a["name"], unit, reg.channel(a["name"]).astype(np.float64), tissue_g, viable_g, dist_g)
    if ions and masks_on_msi:
        native, on_msi = read_ome_tiff(ions), read_ome_tiff(masks_on_msi)
        t_n = np.nan_to_num(on_msi.channel("tissue_fraction")) >= 0.5
        v_n = np.nan_to_num(on_msi.channel("viable_fraction")) >= 0.5
        d_n = on_msi.channel("vessel_distance_um").astype(np.float64)
        for a in msi_cfg["analytes"]:
            add("msi_native", a["name"], unit, native.channel(a["name"]).astype(np.float64), t_n, v_n, d_n)
    df = pd.DataFrame(rows)
    df = pd.concat([df, pd.DataFrame([{"sample": sample, "modality": "msi", "analyte": "all",
                                       "metric": "tissue_coverage_by_acquisition", "value": frac,
                                       "unit": "fraction"}])], ignore_index=True)
    write_table(df, out_metrics)
    write_table(pd.concat(profiles, ignore_index=True), out_profiles)


def quantify_volume(volume: str, mask: str, out_metrics: str, sample: str = "") -> None:
    """Uptake statistics of an in vivo volume inside its tumour mask."""
    from .volume import read_volume, volume_metrics

    img, msk = read_volume(volume), read_volume(mask)
    try:
        metrics = volume_metrics(img, msk)
    except InputError as exc:
        raise InputError(f"{volume} with mask {mask} (sample {sample}): {exc}") from None
    units = {"mean": "image units", "median": "image units", "cv": "1", "p90": "image units",
             "volume_mm3": "mm3"}
    write_table(pd.DataFrame([{"sample": sample, "modality": "volume", "analyte": "uptake", "metric": k,
                               "value": v, "unit": units[k]} for k, v in metrics.items()]), out_metrics)


def volume_registration_settings(vol_cfg: dict) -> RegistrationSettings:
    """Rigid 3-D settings from ``volume_registration`` (smoothing in mm)."""
    base = RegistrationSettings(transform="rigid", histogram_bins=64, sampling_percentage=1.0,
                                smoothing_sigmas=[4.0, 2.0, 0.0], iterations=200)
    return _settings(vol_cfg, base, ("histogram_bins", "sampling_percentage", "seed", "shrink_factors", "iterations",
                                     "threads"), "smoothing_sigmas_mm", "volume_registration")


def register_volume_edge(sample: str, moving: str, moving_path: str, fixed: str, fixed_path: str, vol_cfg: dict,
                         out_transform: str, out_qc: str, moving_mask: str | None = None,
                         fixed_mask: str | None = None) -> None:
    """Register one volume edge rigidly (Mattes MI, physical space) and write its transform and QC table.

    The QC table has the metric before (geometry centring) and after, the tumour-mask Dice on the fixed
    grid before (scanner coordinates as they are) and after when both volumes have masks, the
    optimiser's iterations and stop condition, and ``flagged`` (metric or Dice worse than at the start).
    """
    settings = volume_registration_settings(vol_cfg)
    fixed_img, moving_img = read_volume(fixed_path), read_volume(moving_path)
    log.info("%s: registering %s (%s) onto %s (%s), rigid, Mattes MI", sample, moving, moving_path, fixed, fixed_path)
    result = register_rigid_3d(fixed_img, moving_img, settings)
    qc = {"sample": sample, "edge": f"{moving}->{fixed}", "transform": "rigid", "metric": "mattes_mi",
          "metric_before": result.metric_before, "metric_after": result.metric_after,
          "dice_before": np.nan, "dice_after": np.nan, "iterations": result.iterations,
          "stop_condition": result.stop_condition}
    if moving_mask and fixed_mask:
        fm = sitk.GetArrayFromImage(read_volume(fixed_mask)) > 0
        mm = read_volume(moving_mask)
        qc["dice_before"] = dice(fm, sitk.GetArrayFromImage(resample_to_grid(mm, fixed_img, is_mask=True)) > 0)
        qc["dice_after"] = dice(fm, sitk.GetArrayFromImage(
            resample_to_grid(mm, fixed_img, result.transform, is_mask=True)) > 0)
    qc["flagged"] = bool(result.metric_after > result.metric_before
                         or (qc["dice_after"] < qc["dice_before"] - 0.02))
    qc["run_time_s"] = round(result.runtime_s, 1)  # differs between reruns; `nanohet verify` ignores it
    log.info("%s %s: MI %.4f -> %.4f, mask Dice %.3f -> %.3f, %d iterations in %.1f s", sample, qc["edge"],
             result.metric_before, result.metric_after, qc["dice_before"], qc["dice_after"], result.iterations,
             result.runtime_s)
    if qc["flagged"]:
        log.warning("sample %s: volume registration %s is flagged", sample, qc["edge"])
    write_table(pd.DataFrame([qc]), out_qc)
    with atomic_path(out_transform) as tmp:
        sitk.WriteTransform(result.transform, str(tmp))


def volume_to_reference(image: str, edge_transforms: list[str], reference: str, out_image: str,
                        out_transform: str | None = None, is_mask: bool = False) -> None:
    """Compose a volume's chain of edge transforms and resample it (or its mask) onto the reference grid."""
    transform = compose([sitk.ReadTransform(t) for t in edge_transforms])
    ref = read_volume(reference)
    write_volume(out_image, resample_to_grid(read_volume(image), ref, transform, is_mask=is_mask))
    if out_transform:
        with atomic_path(out_transform) as tmp:
            sitk.WriteTransform(transform, str(tmp))


def cohort_table(metric_files: list[str], section_stats: list[str], sheet: pd.DataFrame,
                 out_metrics: str, out_summary: str) -> None:
    """Gather per-sample metrics into one tidy cohort table and a per-group summary.

    The summary gives, per group, modality, analyte and metric, the number of
    samples, mean, SD and the between-sample CV (interpatient heterogeneity).
    """
    frames = [pd.read_csv(f, sep="\t") for f in metric_files]
    for f in section_stats:
        s = pd.read_csv(f, sep="\t")
        long = s.melt(id_vars=["sample"], var_name="metric", value_name="value")
        long.insert(1, "modality", "fluorescence")
        long.insert(2, "analyte", "section")
        long["unit"] = long["metric"].map({"tissue_area_mm2": "mm2", "necrotic_fraction": "fraction",
                                           "vessel_count": "count", "vessel_density_per_mm2": "1/mm2",
                                           "vessel_area_fraction": "fraction"})
        frames.append(long)
    df = pd.concat(frames, ignore_index=True)
    info = sheet.drop_duplicates("sample")[["sample", "subject", "group", "tumour"]]
    df = info.merge(df, on="sample", how="right")
    df = df.sort_values(["sample", "modality", "analyte", "metric"], kind="stable").reset_index(drop=True)
    write_table(df, out_metrics)
    g = df.groupby(["group", "modality", "analyte", "metric", "unit"], sort=True)["value"]
    summary = g.agg(n="count", mean="mean", sd="std").reset_index()
    summary["between_sample_cv"] = summary["sd"] / summary["mean"]
    write_table(summary, out_summary)


# ----------------------------------------------------------------------------- validation (demo only)

def validate_sample(truth_json: str, landmarks: str, truth_masks: str, transform: str, metrics: str,
                    volume_metrics: str | None, out_tre: str, out_compare: str, sample: str = "",
                    he_transform: str | None = None) -> None:
    """Compare one demo sample's registration and metrics with its ground truth.

    TRE is measured on the landmark pairs and on a dense grid of MSI pixel
    centres (every pixel) whose true position lies inside the tissue, in µm
    and in MSI pixels.
    """
    from .phantom import msi_pixels_in_tissue, section_points_in_tissue, section_to_he

    truth = json.loads(Path(truth_json).read_text())
    geom = truth["msi_geometry"]
    pm = float(geom["pixel_size_um"])
    tx = sitk.ReadTransform(transform)
    lm = pd.read_csv(landmarks, sep="\t")
    rows = []
    tre = target_registration_error(tx, lm[["section_x_um", "section_y_um"]].to_numpy(),
                                    lm[["msi_x_um", "msi_y_um"]].to_numpy())
    masks = read_ome_tiff(truth_masks)
    dense = target_registration_error(tx, *msi_pixels_in_tissue(geom, masks))
    def row(edge, points, e, px):
        return {"sample": sample, "edge": edge, "points": points, "n": int(e.size),
                "median_um": float(np.median(e)), "p95_um": float(np.percentile(e, 95)), "max_um": float(e.max()),
                "median_px": float(np.median(e) / px), "p95_px": float(np.percentile(e, 95) / px),
                "moving_pixel_um": px}

    rows += [row("msi->fluorescence", "landmarks", tre, pm), row("msi->fluorescence", "dense_tissue_grid", dense, pm)]
    if he_transform:
        # every microscopy pixel centre (every 4th) inside the tissue, mapped to its true H&E position
        x_sec = section_points_in_tissue(masks, 4)
        e = target_registration_error(sitk.ReadTransform(he_transform), x_sec,
                                      section_to_he(x_sec, truth["he_geometry"]))
        rows.append(row("he->fluorescence", "dense_tissue_grid", e, float(masks.spacing[0])))
    write_table(pd.DataFrame(rows), out_tre)

    rec = pd.read_csv(metrics, sep="\t")
    comp = []
    for analyte, tm in truth["metrics"].items():
        if analyte == "section":
            continue
        modality = "fluorescence" if analyte == "nanoparticle" else "msi"
        for metric in ("mean", "cv", "coverage", "l50_um"):
            t = tm.get(metric)
            if t is None or not np.isfinite(t):
                continue
            if analyte != "doxorubicin" and metric in ("mean", "coverage"):
                continue  # only the drug is calibrated (µg/g); others are in arbitrary units
            sel = rec[(rec.modality == modality) & (rec.analyte == analyte) & (rec.metric == metric)]
            if sel.empty:
                continue
            r = float(sel["value"].iloc[0])
            comp.append({"sample": sample, "modality": modality, "analyte": analyte, "metric": metric,
                         "recovered": r, "truth": t, "abs_error": abs(r - t),
                         "rel_error": abs(r - t) / abs(t) if t else np.nan})
    if volume_metrics:
        v = pd.read_csv(volume_metrics, sep="\t")
        r = float(v.loc[v.metric == "mean", "value"].iloc[0])
        t = float(truth["volume_true_mean_uptake_pct_id_per_g"])
        comp.append({"sample": sample, "modality": "volume", "analyte": "uptake", "metric": "mean",
                     "recovered": r, "truth": t, "abs_error": abs(r - t), "rel_error": abs(r - t) / abs(t)})
    write_table(pd.DataFrame(comp), out_compare)


def concat_tables(inputs: list[str], output: str) -> None:
    """Concatenate tab-separated tables with the same columns."""
    write_table(pd.concat([pd.read_csv(f, sep="\t") for f in inputs], ignore_index=True), output)


# ----------------------------------------------------------------------------- figures

def sample_figure(sample: str, fluorescence: str, masks: str, registered: str, profiles: str,
                  metrics: str, mic_cfg: dict, msi_cfg: dict, out_png: str,
                  pixel_size_um: float | None = None, channels: str | None = None) -> None:
    """Per-sample overview panel (see :func:`nanohet.figures.sample_panel`)."""
    from .figures import sample_panel

    sample_panel(out_png, sample,
                 read_ome_tiff(fluorescence, pixel_size_um=pixel_size_um, channel_names=_channels_arg(channels)),
                 read_ome_tiff(masks), read_ome_tiff(registered), pd.read_csv(profiles, sep="\t"),
                 pd.read_csv(metrics, sep="\t"), mic_cfg["channels"], msi_cfg["analytes"][0]["name"])


def cohort_figure(cohort_tsv: str, msi_cfg: dict, out_png: str) -> None:
    """Cohort strip plots of the key heterogeneity metrics."""
    from .figures import cohort_summary

    df = pd.read_csv(cohort_tsv, sep="\t")
    drug = msi_cfg["analytes"][0]["name"]
    panels = [("msi", drug, "mean", f"{drug}: mean in tumour"), ("msi", drug, "cv", f"{drug}: CV"),
              ("msi", drug, "coverage", f"{drug}: coverage"), ("msi", drug, "l50_um", f"{drug}: L50 (µm)"),
              ("fluorescence", "nanoparticle", "l50_um", "nanoparticle: L50 (µm)"),
              ("fluorescence", "nanoparticle", "cv", "nanoparticle: CV"),
              ("fluorescence", "section", "necrotic_fraction", "necrotic fraction"),
              ("fluorescence", "section", "vessel_density_per_mm2", "vessel density (/mm² viable)")]
    if (df.modality == "volume").any():
        panels.append(("volume", "uptake", "mean", "in vivo uptake: mean in tumour"))
    cohort_summary(out_png, df, panels)


def validation_outputs(tre_files: list[str], compare_files: list[str], out_tre: str, out_compare: str,
                       out_png: str) -> None:
    """Cohort registration-error and metrics-vs-truth tables, and their figure."""
    from .figures import validation_figure

    concat_tables(tre_files, out_tre)
    concat_tables(compare_files, out_compare)
    tre = pd.read_csv(out_tre, sep="\t")
    comp = pd.read_csv(out_compare, sep="\t")
    validation_figure(out_png, tre, comp)
    for edge, sub in tre[tre.points == "dense_tissue_grid"].groupby("edge"):
        log.info("%s registration error (dense grid): median %.2f px (worst sample), p95 %.2f px of the moving image",
                 edge, sub["median_px"].max(), sub["p95_px"].max())
