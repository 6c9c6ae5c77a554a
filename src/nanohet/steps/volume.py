"""Steps of ``workflow/rules/volume.smk``: rigid volume edges, each volume composed onto the reference grid, and the
measures of each volume inside its tumour mask."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import SimpleITK as sitk

from ..atomic import atomic_path, write_table
from ..errors import InputError
from ..io.pet import is_pet_series, read_pet_suv
from ..io.rtstruct import read_mask
from ..io.spect import CountCalibration
from ..io.volumes import frame_of_reference, read_volume, write_volume
from ..registration.graph import compose
from ..registration.qc import dice, volume_edge_qc
from ..registration.volumes import register_rigid_3d, resample_to_grid, start_transform_3d
from ..quantify.volume import counting_volume_rows, percent_injected_dose_rows, volume_rows
from ..settings import QuantifySettings, VolumeRegistrationSettings

log = logging.getLogger("nanohet")


def register_volume_edge(sample: str, vmoving: str, vfixed: str, moving: str, fixed: str,
                         settings: dict | VolumeRegistrationSettings, out_transform: str, out_qc: str,
                         moving_mask: str | None = None, fixed_mask: str | None = None,
                         shared_frame: bool = False, moving_structure: str | None = None,
                         fixed_structure: str | None = None, moving_series: str | None = None,
                         fixed_series: str | None = None) -> None:
    """Register one volume edge rigidly (Mattes MI, physical space) and write its transform and QC table.

    Volumes that share the scanner's frame of reference (``shared_frame``, declared in the sample sheet's
    ``frame`` column, or the same DICOM FrameOfReferenceUID) start from the scanner frame, others from their
    grid centres aligned. The QC table (:func:`nanohet.registration.qc.volume_edge_qc`) measures the metric and
    the tumour-mask Dice at the start pose and at the fit; an edge that ends worse keeps its start pose, says so,
    and fails the run with ``volume_registration.fail_on_flag``.
    """
    settings = VolumeRegistrationSettings.coerce(settings)
    fixed_img, moving_img = read_volume(fixed, fixed_series), read_volume(moving, moving_series)
    uid = frame_of_reference(fixed, fixed_series)
    start = ("scanner" if shared_frame or (uid is not None and uid == frame_of_reference(moving, moving_series))
             else "geometry")
    log.info("%s: registering %s (%s) onto %s (%s), rigid, Mattes MI, starting from %s", sample, vmoving, moving,
             vfixed, fixed, "the shared scanner frame" if start == "scanner" else "the grid centres aligned")
    result = register_rigid_3d(fixed_img, moving_img, settings.optimiser(), start=start)
    start_tx = start_transform_3d(fixed_img, moving_img, start)
    dice_before = dice_after = float("nan")
    if moving_mask and fixed_mask:
        fm = sitk.GetArrayFromImage(read_mask(fixed_mask, fixed_img, fixed_structure)) > 0
        mm = read_mask(moving_mask, moving_img, moving_structure)
        dice_before, dice_after = (dice(fm, sitk.GetArrayFromImage(resample_to_grid(mm, fixed_img, tx, is_mask=True)) > 0)
                                   for tx in (start_tx, result.transform))
    name = f"{vmoving}->{vfixed}"
    qc = volume_edge_qc(sample, name, result, dice_before, dice_after, start, settings.dice_tolerance)
    log.info("%s %s: MI %.4f -> %.4f, mask Dice %.3f -> %.3f, %d iterations in %.1f s", sample, name,
             result.metric_before, result.metric_after, dice_before, dice_after, result.iterations, result.runtime_s)
    if qc["flagged"]:
        message = f"sample {sample}: volume registration {name} is flagged: {qc['flag_reason']}"
        log.warning(message)
        if settings.fail_on_flag:
            raise InputError(message + "; volume_registration.fail_on_flag is true")
    write_table(pd.DataFrame([qc]), out_qc)
    with atomic_path(out_transform) as tmp:
        sitk.WriteTransform(start_tx if qc["kept_start"] else result.transform, str(tmp))


def volume_to_reference(image: str, edges: list[str] | str, reference: str, out_image: str,
                        out_transform: str | None = None, is_mask: bool = False, grid: str | None = None,
                        structure: str | None = None, series: str | None = None,
                        reference_series: str | None = None) -> None:
    """Compose a volume's chain of edge transforms and resample it (or its mask) onto the reference grid. A mask
    that is an RT structure set is rasterised onto its own volume (``grid``) first."""
    edges = [edges] if isinstance(edges, str) else list(edges)
    transform = compose([sitk.ReadTransform(t) for t in edges])
    if is_mask:  # the mask file (an RT structure set is rasterised onto its own volume, the grid)
        source = read_mask(image, read_volume(grid, series), structure) if grid else read_volume(image)
    else:
        source = read_volume(image, series)
    write_volume(out_image, resample_to_grid(source, read_volume(reference, reference_series), transform,
                                             is_mask=is_mask))
    if out_transform:
        with atomic_path(out_transform) as tmp:
            sitk.WriteTransform(transform, str(tmp))


VOLUME_ANALYTES = {"volume": "uptake", "ct": "attenuation", "mr": "signal"}


def quantify_volume(volume: str, mask: str, out_metrics: str, sample: str = "",
           quantify: dict | QuantifySettings | None = None, structure: str | None = None,
           modality: str = "volume", dicom_series: str | None = None, counting: dict | None = None) -> None:
    """Every measure of an in vivo volume inside its tumour mask (:func:`nanohet.quantify.volume.volume_rows`):
    the uptake volume (``modality`` volume: PET in SUV, SPECT), or a CT (Hounsfield units) or MR with a mask.
    ``counting``: the volume row's :data:`nanohet.io.spect.SHEET_COLUMNS`; with a calibration factor the counts
    become kBq/ml (and %ID/g, SUVbw where the dose and weight are given)."""
    unit, conversion = {"ct": "HU"}.get(modality, "image units"), None
    calibration = CountCalibration.from_row(counting, f"sample {sample}: {volume}")
    if calibration is not None:
        img = read_volume(volume, dicom_series)
        counts = sitk.GetArrayFromImage(img)
        kbq = sitk.GetImageFromArray(calibration.kbq_per_ml(counts, float(np.prod(img.GetSpacing())) / 1000.0))
        kbq.CopyInformation(img)
        img, unit = kbq, "kBq/ml"
        log.info("%s: counts converted to kBq/ml with %s", volume, calibration)
    elif is_pet_series(volume, dicom_series):  # PET DICOM: to SUVbw from its header, the conversion recorded
        img, conversion = read_pet_suv(volume, dicom_series)
        unit = "SUVbw"
        log.info("%s: PET in %s (decay correction %s) converted to SUVbw: %s", volume, conversion.units,
                 conversion.decay_correction, conversion)
    else:
        img = read_volume(volume, dicom_series)
    msk = read_mask(mask, img, structure)
    try:
        rows = volume_rows(img, msk, QuantifySettings.coerce(quantify or {}), unit)
    except InputError as exc:
        raise InputError(f"{volume} with mask {mask} (sample {sample}): {exc}") from None
    if calibration is not None:
        rows += counting_volume_rows(sitk.GetArrayFromImage(img), sitk.GetArrayFromImage(msk) > 0,
                                     float(np.prod(img.GetSpacing())) / 1000.0, calibration)
    if conversion is not None:
        rows += [{"region": "tumour", "ibsi": "", **r} for r in conversion.as_rows()]
        rows += percent_injected_dose_rows(sitk.GetArrayFromImage(img).astype(np.float64),
                                           sitk.GetArrayFromImage(msk) > 0, float(np.prod(img.GetSpacing())) / 1000.0,
                                           conversion.weight_kg)
    write_table(pd.DataFrame([{"sample": sample, "modality": modality, "analyte": VOLUME_ANALYTES[modality], **r}
                              for r in rows]), out_metrics)
