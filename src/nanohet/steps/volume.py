"""Steps of ``workflow/rules/volume.smk``: rigid volume edges and each volume composed onto the reference grid."""

from __future__ import annotations

import logging

import pandas as pd
import SimpleITK as sitk

from ..atomic import atomic_path, write_table
from ..io.volumes import read_volume, write_volume
from ..registration.graph import compose
from ..registration.qc import dice, volume_edge_qc
from ..registration.volumes import register_rigid_3d, resample_to_grid
from ..settings import VolumeRegistrationSettings

log = logging.getLogger("nanohet")


def register_volume_edge(sample: str, vmoving: str, vfixed: str, moving: str, fixed: str,
                         settings: dict | VolumeRegistrationSettings, out_transform: str, out_qc: str,
                         moving_mask: str | None = None, fixed_mask: str | None = None) -> None:
    """Register one volume edge rigidly (Mattes MI, physical space) and write its transform and QC table.

    The QC table has the metric before (geometry centring) and after, the tumour-mask Dice on the fixed
    grid before (scanner coordinates as they are) and after when both volumes have masks, the
    optimiser's iterations and stop condition, and ``flagged`` (metric or Dice worse than at the start).
    """
    settings = VolumeRegistrationSettings.coerce(settings)
    fixed_img, moving_img = read_volume(fixed), read_volume(moving)
    log.info("%s: registering %s (%s) onto %s (%s), rigid, Mattes MI", sample, vmoving, moving, vfixed, fixed)
    result = register_rigid_3d(fixed_img, moving_img, settings.optimiser())
    dice_before = dice_after = float("nan")
    if moving_mask and fixed_mask:
        fm = sitk.GetArrayFromImage(read_volume(fixed_mask)) > 0
        mm = read_volume(moving_mask)
        dice_before = dice(fm, sitk.GetArrayFromImage(resample_to_grid(mm, fixed_img, is_mask=True)) > 0)
        dice_after = dice(fm, sitk.GetArrayFromImage(resample_to_grid(mm, fixed_img, result.transform,
                                                                      is_mask=True)) > 0)
    qc = volume_edge_qc(sample, f"{vmoving}->{vfixed}", result, dice_before, dice_after)
    log.info("%s %s: MI %.4f -> %.4f, mask Dice %.3f -> %.3f, %d iterations in %.1f s", sample, qc["edge"],
             result.metric_before, result.metric_after, dice_before, dice_after, result.iterations, result.runtime_s)
    if qc["flagged"]:
        log.warning("sample %s: volume registration %s is flagged", sample, qc["edge"])
    write_table(pd.DataFrame([qc]), out_qc)
    with atomic_path(out_transform) as tmp:
        sitk.WriteTransform(result.transform, str(tmp))


def volume_to_reference(image: str, edges: list[str] | str, reference: str, out_image: str,
                        out_transform: str | None = None, is_mask: bool = False) -> None:
    """Compose a volume's chain of edge transforms and resample it (or its mask) onto the reference grid."""
    edges = [edges] if isinstance(edges, str) else list(edges)
    transform = compose([sitk.ReadTransform(t) for t in edges])
    write_volume(out_image, resample_to_grid(read_volume(image), read_volume(reference), transform, is_mask=is_mask))
    if out_transform:
        with atomic_path(out_transform) as tmp:
            sitk.WriteTransform(transform, str(tmp))
