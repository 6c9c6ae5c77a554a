"""Regions drawn on a section in QuPath or napari, exported as GeoJSON, as masks on any grid of that section.

A FeatureCollection (or a list of features, as QuPath writes) of Polygon and MultiPolygon geometries in the
pixel coordinates of the image they were drawn on, x to the right and y down, with (0, 0) at the top-left corner
of the first pixel (QuPath's and napari's convention; the centre of pixel [0, 0] is at (0.5, 0.5)). Each
feature's region name is ``properties.name``, else its QuPath classification (``properties.classification.name``),
else ``region_<k>``; features of one name are joined. Interior rings are holes. Pixels of the target grid whose
centres lie inside a polygon belong to the region.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from ..errors import InputError


def _name(feature: dict, k: int) -> str:
    props = feature.get("properties") or {}
    name = props.get("name") or (props.get("classification") or {}).get("name") or f"region_{k}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_") or f"region_{k}"


def _polygons(geometry: dict, where: str) -> list[list]:
    kind = geometry.get("type")
    if kind == "Polygon":
        return [geometry["coordinates"]]
    if kind == "MultiPolygon":
        return list(geometry["coordinates"])
    raise InputError(f"{where}: a {kind} geometry; regions must be polygons (Polygon or MultiPolygon)")


def read_regions(path: str | os.PathLike, shape: tuple[int, int], image_spacing_um, image_origin_um,
                 grid_spacing_um, grid_origin_um) -> dict[str, np.ndarray]:
    """The regions of a GeoJSON file as boolean masks of ``shape`` on a grid of the section.

    Parameters
    ----------
    path : path-like
        The GeoJSON file, in pixel coordinates of the image it was drawn on.
    shape : (rows, columns)
        The target grid.
    image_spacing_um, image_origin_um : (x, y)
        Pixel size and the centre of pixel [0, 0] of the image the regions were drawn on (µm).
    grid_spacing_um, grid_origin_um : (x, y)
        The same for the target grid (µm).
    """
    from skimage.draw import polygon

    where = str(path)
    try:
        data = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError) as exc:
        raise InputError(f"{where}: not a readable GeoJSON file ({exc})") from None
    features = data.get("features", []) if isinstance(data, dict) else data
    if isinstance(data, dict) and data.get("type") == "Feature":
        features = [data]
    if not features:
        raise InputError(f"{where}: no features (regions) in the file")
    spacing, origin = np.asarray(image_spacing_um, float), np.asarray(image_origin_um, float)
    g_spacing, g_origin = np.asarray(grid_spacing_um, float), np.asarray(grid_origin_um, float)
    out: dict[str, np.ndarray] = {}
    for k, feature in enumerate(features, start=1):
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not geometry:
            continue
        mask = np.zeros(shape, dtype=bool)
        for rings in _polygons(geometry, where):
            for r, ring in enumerate(rings):
                xy = np.asarray(ring, dtype=np.float64)[:, :2]
                um = origin + (xy - 0.5) * spacing  # pixel-corner coordinates -> µm (pixel centres at .5)
                index = (um - g_origin) / g_spacing  # target-grid pixel index (centres at integers)
                rr, cc = polygon(index[:, 1], index[:, 0], shape=shape)
                filled = np.zeros(shape, dtype=bool)
                filled[rr, cc] = True
                mask = mask & ~filled if r else mask | filled  # the first ring bounds, the others are holes
        name = _name(feature, k)
        out[name] = out.get(name, np.zeros(shape, dtype=bool)) | mask
    return out
