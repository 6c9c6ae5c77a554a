"""Regions drawn in QuPath or napari (GeoJSON) as masks on a section's grids (nanohet.io.geojson)."""

import json

import numpy as np
import pytest

from nanohet.errors import InputError
from nanohet.io.geojson import read_regions


def _write(path, features):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _square(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def test_polygons_holes_names_and_grids(tmp_path):
    """A square drawn on a 2 µm image covers exactly its pixels; a hole is cut out; features of one class are
    joined; on a 10 µm grid of the same section the square covers the blocks whose centres it contains."""
    path = _write(tmp_path / "r.geojson", [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [_square(10, 20, 30, 50)]},
         "properties": {"classification": {"name": "Tumor rim"}}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [_square(60, 60, 90, 90),
                                                                             _square(70, 70, 80, 80)]},
         "properties": {"name": "stroma"}},
        {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [[_square(0, 0, 5, 5)]]},
         "properties": {"classification": {"name": "Tumor rim"}}},
    ])
    regions = read_regions(path, (100, 100), (2.0, 2.0), (1.0, 1.0), (2.0, 2.0), (1.0, 1.0))
    assert sorted(regions) == ["Tumor_rim", "stroma"]
    rim = regions["Tumor_rim"]
    want = np.zeros((100, 100), bool)
    want[20:50, 10:30] = True  # pixel corners 10..30 x 20..50: centres 10.5..29.5 x 20.5..49.5
    want[0:5, 0:5] = True
    np.testing.assert_array_equal(rim, want)
    stroma = regions["stroma"]
    assert stroma.sum() == 30 * 30 - 10 * 10 and not stroma[75, 75] and stroma[65, 65]
    # the same square on a 10 µm grid (blocks of 5 x 5 pixels; block centres at pixel 2, 7, ...)
    coarse = read_regions(path, (20, 20), (2.0, 2.0), (1.0, 1.0), (10.0, 10.0), (5.0, 5.0))["Tumor_rim"]
    assert coarse[4:10, 2:6].all() and coarse.sum() == 6 * 4 + 1


def test_bad_geojson_is_refused(tmp_path):
    with pytest.raises(InputError, match="no features"):
        read_regions(_write(tmp_path / "e.geojson", []), (10, 10), (1, 1), (0, 0), (1, 1), (0, 0))
    lines = _write(tmp_path / "l.geojson", [{"type": "Feature", "geometry": {"type": "LineString",
                                                                             "coordinates": [[0, 0], [5, 5]]}}])
    with pytest.raises(InputError, match="LineString geometry; regions must be polygons"):
        read_regions(lines, (10, 10), (1, 1), (0, 0), (1, 1), (0, 0))
    (tmp_path / "x.geojson").write_text("{not json")
    with pytest.raises(InputError, match="not a readable GeoJSON"):
        read_regions(tmp_path / "x.geojson", (10, 10), (1, 1), (0, 0), (1, 1), (0, 0))
