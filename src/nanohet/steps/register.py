"""Steps of ``workflow/rules/register.smk``: one registration edge, and each section's chain composed and
resampled once onto the analysis grid of the reference section."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from ..atomic import atomic_path, write_table
from ..errors import InputError
from ..image import SectionImage
from ..io.ometiff import read_ome_tiff, write_ome_tiff
from ..quantify.grid import AnalysisGrid, masks_on_msi_grid
from ..registration.graph import compose
from ..registration.images import fluorescence_input, he_input, msi_input
from ..registration.landmarks import read_landmarks
from ..registration.optimise import register
from ..registration.qc import edge_qc, landmark_start
from ..registration.resample import resample_rgb, resample_stack, resample_to
from ..settings import EdgeSettings, MicroscopySettings, QuantifySettings
from . import read_section

log = logging.getLogger("nanohet")


def section_input(modality: str, image: str, edge: EdgeSettings, microscopy: MicroscopySettings, sample: str,
                  masks: str | None = None, pixel_size: float | None = None, channels: str | None = None):
    """Read one section of an edge and build what the metric sees (:mod:`nanohet.registration.images`)."""
    where = f"sample {sample}: {image}" if sample else str(image)
    if modality == "msi":
        return msi_input(read_ome_tiff(image), edge, where)
    if modality == "fluorescence":
        return fluorescence_input(read_section(image, pixel_size, channels, microscopy.working_pixel_um),
                                  read_ome_tiff(masks), microscopy, edge, where)
    if modality == "he":
        return he_input(read_section(image, pixel_size, None, microscopy.working_pixel_um), edge, where)
    raise InputError(f"no registration input for modality {modality!r}")


def register_edge(sample: str, moving: str, fixed: str, moving_image: str, fixed_image: str,
                  edge: dict | EdgeSettings, microscopy: dict | MicroscopySettings, out_transform: str, out_qc: str,
                  out_figure: str | None = None, masks: str | None = None, landmarks: str | None = None,
                  options: dict | None = None) -> None:
    """Register one edge of the sample's registration graph (``moving`` onto ``fixed``).

    ``edge`` holds the edge's settings (:meth:`nanohet.settings.RegistrationSettings.edge`); ``masks`` the
    fluorescence masks when fluorescence is one side; ``options`` the sample sheet's pixel sizes and channel
    names per modality (``{modality: {"pixel_size": ..., "channels": ...}}``). With ``landmarks`` (a CSV, see
    :mod:`nanohet.registration.landmarks`) the fit starts from the landmark transform and the QC table reports
    their error. Writes the ITK transform (fixed frame -> moving frame), the QC table and figure; a flagged
    edge fails with ``fail_on_flag``.
    """
    edge, microscopy = EdgeSettings.coerce(edge), MicroscopySettings.coerce(microscopy)
    options = options or {}
    mov = section_input(moving, moving_image, edge, microscopy, sample, masks, **options.get(moving, {}))
    fix = section_input(fixed, fixed_image, edge, microscopy, sample, masks, **options.get(fixed, {}))
    points = read_landmarks(landmarks, sample) if landmarks else None
    settings = edge.optimiser()
    log.info("%s: registering %s (%s) onto %s (%s), %s, %d start angles, mirror search %s%s", sample, mov.label,
             moving_image, fix.label, fixed_image, settings.transform, len(settings.rotation_search_deg),
             settings.flip_search, ", landmark start" if points else "")
    result = register(fix.image, mov.image, settings, moving_mask=mov.valid, initial_transform=landmark_start(points))
    name = f"{moving}->{fixed}"
    qc, start = edge_qc(sample, name, edge, result, fix, mov, points)
    _log_edge(sample, name, qc, result)
    if out_figure:
        _qc_figure(out_figure, f"{sample} {name}", fix, mov, start, result, qc)
    if qc["flagged"]:
        message = (f"sample {sample}: registration {name} is flagged: {qc['flag_reason']} (MI "
                   f"{result.metric_before:.4f} -> {result.metric_after:.4f}, tissue Dice {qc['dice_before']:.3f} -> "
                   f"{qc['dice_after']:.3f}, bound {edge.min_dice}, pose margin {result.pose_margin:.4f})")
        log.warning(message)
        if edge.fail_on_flag:
            raise InputError(message + "; registration.fail_on_flag is true")
    write_table(pd.DataFrame([qc]), out_qc)
    with atomic_path(out_transform) as tmp:
        sitk.WriteTransform(result.transform, str(tmp))


def _log_edge(sample: str, name: str, qc: dict, result) -> None:
    log.info("%s %s: MI %.4f -> %.4f, tissue Dice %.3f -> %.3f, start rotation %.0f deg%s, %d iterations in %.1f s",
             sample, name, result.metric_before, result.metric_after, qc["dice_before"], qc["dice_after"],
             result.initial_rotation_deg, " (mirrored)" if result.flipped else "", result.iterations, result.runtime_s)
    if np.isfinite(qc["deformation_max_um"]):
        log.info("%s %s: B-spline deformation up to %.1f µm, smallest Jacobian determinant %.3f%s", sample, name,
                 qc["deformation_max_um"], qc["jacobian_min"], " (FOLDS)" if qc["jacobian_min"] <= 0 else "")


def _qc_figure(path: str, title: str, fix, mov, start, result, qc: dict) -> None:
    from ..figures.qc import registration_qc

    grid = fix.image
    tissue_fixed = sitk.GetArrayFromImage(fix.tissue) >= 0.5
    before = resample_to(mov.image, grid, start, default=0.0)
    after = resample_to(mov.image, grid, result.transform, default=0.0)
    sp, org, shape = grid.GetSpacing(), grid.GetOrigin(), tissue_fixed.shape
    extent = [(org[0] - sp[0] / 2) / 1000, (org[0] + (shape[1] - 0.5) * sp[0]) / 1000,
              (org[1] + (shape[0] - 0.5) * sp[1]) / 1000, (org[1] - sp[1] / 2) / 1000]
    registration_qc(path, title, sitk.GetArrayFromImage(grid), before, after, tissue_fixed, extent, qc)


def to_reference(modality: str, source: str, edges: list[str] | str, grid: str, out_transform: str,
                 out_registered: str, source_pixel_size: float | None = None,
                 working_um: float | None = None, masks: str | None = None,
                 out_masks_on_msi: str | None = None) -> None:
    """Compose a section's chain of edge transforms and resample it once onto the analysis grid (an H&E whole
    slide read at the working resolution ``working_um``, ``microscopy.working_pixel_um``); for MSI with
    ``out_masks_on_msi``, also the microscopy ``masks`` and vessel distance on its native pixels
    (:func:`nanohet.quantify.grid.masks_on_msi_grid`).

    Parameters
    ----------
    modality : {"msi", "he"}
    source : str
        The MSI ion stack or the H&E image.
    edges : list of str
        Edge transform files from the edge onto the reference outwards (see
        :func:`nanohet.registration.graph.compose`).
    grid : str
        The analysis grid (``analysis_grid.json``, :class:`nanohet.quantify.grid.AnalysisGrid`).
    """
    edges = [edges] if isinstance(edges, str) else list(edges)
    transform = compose([sitk.ReadTransform(t) for t in edges])
    g = AnalysisGrid.read(grid)
    ref = g.image()
    if modality == "msi":
        stack = read_ome_tiff(source)
        registered = SectionImage(resample_stack(stack, ref, transform), list(stack.channels), g.spacing, g.origin)
    elif modality == "he":
        rgb = resample_rgb(read_section(source, source_pixel_size, None, working_um), ref, transform)
        registered = SectionImage(rgb, ["R", "G", "B"], g.spacing, g.origin)
    else:
        raise InputError(f"no resampling into the reference for modality {modality!r}")
    write_ome_tiff(out_registered, registered)
    if out_masks_on_msi:
        if modality != "msi" or not masks:
            raise ValueError("masks on native pixels need modality msi and the masks")
        write_ome_tiff(out_masks_on_msi, masks_on_msi_grid(read_ome_tiff(masks), stack, transform))
    with atomic_path(out_transform) as tmp:
        sitk.WriteTransform(transform, str(tmp))


def one_edge(modality: str, source, fluorescence, masks, registration: dict, microscopy: dict, quantify: dict,
             out_transform, out_registered, out_qc, sample: str = "", out_figure=None, out_masks_on_msi=None,
             landmarks=None, he_pixel_size: float | None = None) -> None:
    """A one-edge graph as the workflow runs it: ``modality`` (msi or he) registered onto the fluorescence
    section (:func:`register_edge`), the analysis grid, the section resampled onto it (:func:`to_reference`)
    and, with ``out_masks_on_msi``, the masks on its native pixels. For scripts and tests; ``registration``,
    ``microscopy`` and ``quantify`` are config sections. The edge transform and the grid are written beside
    ``out_transform`` (``*_edge.tfm``, ``*_grid.json``)."""
    from ..settings import RegistrationSettings
    from . import quantify as quantify_steps

    out_transform = Path(out_transform)
    edge_tx = out_transform.with_name(out_transform.stem + "_edge.tfm")
    grid = out_transform.with_name(out_transform.stem + "_grid.json")
    edge = RegistrationSettings.from_dict(registration).edge(modality, "fluorescence")
    register_edge(sample, modality, "fluorescence", str(source), str(fluorescence), edge, microscopy, str(edge_tx),
                  str(out_qc), out_figure, masks=str(masks), landmarks=landmarks,
                  options={"he": {"pixel_size": he_pixel_size}})
    quantify_steps.analysis_grid(str(fluorescence), QuantifySettings.coerce(quantify).analysis_spacing_um, str(grid),
                                 working_um=MicroscopySettings.coerce(microscopy).working_pixel_um)
    to_reference(modality, str(source), [str(edge_tx)], str(grid), str(out_transform), str(out_registered),
                 source_pixel_size=he_pixel_size, masks=str(masks),
                 out_masks_on_msi=str(out_masks_on_msi) if out_masks_on_msi else None)
