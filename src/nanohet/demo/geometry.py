"""The demo's true geometry: where each MSI pixel and H&E point lies on the section (the transforms the
registration must recover), and the points validation measures the error on."""

from __future__ import annotations

import math

import numpy as np

from ..image import SectionImage


def msi_to_section(u: np.ndarray, geom: dict) -> np.ndarray:
    """Map MSI physical coordinates to section coordinates (the true transform).

    Parameters
    ----------
    u : ndarray, shape (N, 2)
        Points ``(x, y)`` in the MSI frame, µm (pixel (1, 1) at the origin).
    geom : dict
        The ``msi_geometry`` entry of the ground truth.

    Returns
    -------
    ndarray, shape (N, 2)
        The same points in section (fluorescence) coordinates, µm.
    """
    u = np.atleast_2d(np.asarray(u, dtype=np.float64))
    th = math.radians(geom["rotation_deg"])
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    q = u - geom["msi_centre"]
    if geom.get("mirrored"):
        q = q * np.array([-1.0, 1.0])  # the section was mounted face down on the MSI slide
    x = q @ rot.T * geom["scale"] + geom["section_centre"] + geom["translation"]
    a, wl, ph = geom["deformation_amplitude"], geom["deformation_wavelength"], geom["deformation_phase"]
    dx = a * np.sin(2 * np.pi * x[:, 1] / wl[0] + ph[0]) * np.cos(2 * np.pi * x[:, 0] / wl[1] + ph[1])
    dy = a * np.cos(2 * np.pi * x[:, 0] / wl[2] + ph[2]) * np.sin(2 * np.pi * x[:, 1] / wl[3] + ph[3])
    return x + np.stack([dx, dy], axis=1)


def he_to_section(p: np.ndarray, geom: dict) -> np.ndarray:
    """Map H&E image coordinates (µm) to section coordinates (a rigid offset, optionally mirrored)."""
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    th = math.radians(geom["rotation_deg"])
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    c = np.asarray(geom["centre"])
    q = p - c
    if geom.get("mirrored"):
        q = q * np.array([-1.0, 1.0])  # the section was mounted face down
    return q @ rot.T + c + np.asarray(geom["translation"])


def msi_pixels_in_tissue(geom: dict, truth_masks: SectionImage) -> tuple[np.ndarray, np.ndarray]:
    """Every MSI pixel centre whose true section position lies in the true tissue, for dense TRE.

    Returns
    -------
    section_points, msi_points : ndarray, shape (N, 2)
        The same points in the section frame and in the MSI frame, µm.
    """
    tissue = truth_masks.channel("tissue") > 0
    ny, nx = geom["grid_shape"]
    ys, xs = np.mgrid[0:ny, 0:nx]
    u = np.stack([xs.ravel(), ys.ravel()], axis=1) * float(geom["pixel_size_um"])
    x = msi_to_section(u, geom)
    ij = np.round((x - np.asarray(truth_masks.origin)) / np.asarray(truth_masks.spacing)).astype(int)
    ok = (ij >= 0).all(1) & (ij[:, 0] < tissue.shape[1]) & (ij[:, 1] < tissue.shape[0])
    ok[ok] = tissue[ij[ok, 1], ij[ok, 0]]
    return x[ok], u[ok]


def section_points_in_tissue(truth_masks: SectionImage, step: int = 4) -> np.ndarray:
    """Every ``step``-th microscopy pixel centre (both axes) inside the true tissue, section frame µm, (N, 2)."""
    ys, xs = np.nonzero(truth_masks.channel("tissue")[::step, ::step] > 0)
    return np.stack([xs, ys], axis=1) * step * np.asarray(truth_masks.spacing) + np.asarray(truth_masks.origin)


def section_to_he(x: np.ndarray, geom: dict) -> np.ndarray:
    """Inverse of :func:`he_to_section`: section coordinates (µm) to H&E image coordinates."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    th = math.radians(geom["rotation_deg"])
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    c = np.asarray(geom["centre"])
    q = (x - c - np.asarray(geom["translation"])) @ rot
    if geom.get("mirrored"):
        q = q * np.array([-1.0, 1.0])
    return q + c
