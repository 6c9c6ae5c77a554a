"""Whole-slide images read in pieces: a pyramid level chosen by resolution, or any window of a level.

A whole slide (a pyramidal OME-TIFF, an Aperio SVS, an Akoya QPTIFF; 40,000 x 40,000 pixels and 4 channels are
12.8 GB at 16 bits) does not fit in memory, and most steps do not need its full resolution: masks, registration
and the analysis grid work at a few micrometres. :class:`Slide` reads

* a whole level, choosing the coarsest pyramid level whose pixel is no larger than the spacing a step asks for,
  then averaging blocks of whole pixels down to that spacing in bands of rows (:meth:`Slide.read_at`), so a
  file without a pyramid is reduced without ever holding its base level;
* any window of a level, decoding only the tiles or strips it overlaps (:meth:`Slide.read_window`): steps that
  need the full resolution (the cells) go over the base level in tiles.

Geometry: a level of ``W_k`` pixels across a base level of ``W_0`` has the spacing ``s_0 W_0 / W_k``. Its pixels
are taken as averages of the base pixels they cover (how pyramid writers reduce: bioformats, libvips, tifffile's
users), so the centre of its pixel [0, 0] lies ``(f - 1) / 2`` base pixels from the base's, ``f`` being the
ratio of spacings; the same holds for the block averages made here.
"""

from __future__ import annotations

import math
import os

import numpy as np
import tifffile

from ..errors import InputError
from ..image import SectionImage
from .ometiff import section_metadata

BAND_BYTES = 256 << 20  # base-level rows read at once when averaging blocks: about this many bytes


class Slide:
    """A 2-D multi-channel TIFF (OME-TIFF, SVS, QPTIFF, plain), its pyramid levels and windows of them.

    Parameters
    ----------
    path : path-like
        The file.
    pixel_size_um, channel_names
        As for :func:`nanohet.io.ometiff.read_ome_tiff` (the sample sheet's values).

    Attributes
    ----------
    channels : list of str
        Channel names (RGB files: ``R, G, B``).
    spacing : tuple of float
        Base-level pixel size ``(x, y)`` in µm.
    origin : tuple of float
        Centre of the base level's pixel [0, 0] in µm.
    level_shapes : list of tuple
        ``(rows, columns)`` of each level, finest first.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike, *, pixel_size_um: float | None = None,
                 channel_names: list[str] | None = None):
        self.path = str(path)
        meta = section_metadata(path, pixel_size_um=pixel_size_um, channel_names=channel_names)
        self.channels, self.spacing, self.origin = meta["channels"], meta["spacing"], meta["origin"]
        self._layout = meta["layout"]
        try:
            self._tif = tifffile.TiffFile(path)
            series = self._tif.series[0]
            self._levels = [level.pages for level in series.levels]
            self.level_shapes = [_page_yx(pages[0]) for pages in self._levels]
            self._dtype = np.dtype(series.dtype)
        except Exception as exc:  # tifffile raises many types for corrupt files
            raise InputError(f"{path}: not a readable TIFF ({exc})") from exc
        planes = sum(_key(p).shaped[0] * _key(p).shaped[4] for p in self._levels[0])
        if planes < len(self.channels):
            raise InputError(f"{path}: {planes} image planes for the channels {self.channels}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._tif.close()

    def level_spacing(self, level: int) -> tuple[float, float]:
        """Pixel size ``(x, y)`` (µm) of a level."""
        (h0, w0), (h, w) = self.level_shapes[0], self.level_shapes[level]
        return self.spacing[0] * w0 / w, self.spacing[1] * h0 / h

    def level_origin(self, level: int, factor: int = 1) -> tuple[float, float]:
        """Centre (µm) of pixel [0, 0] of a level, averaged further in ``factor`` x ``factor`` blocks."""
        sx, sy = self.level_spacing(level)
        return (self.origin[0] + ((sx * factor) / self.spacing[0] - 1) / 2 * self.spacing[0],
                self.origin[1] + ((sy * factor) / self.spacing[1] - 1) / 2 * self.spacing[1])

    def level_for(self, spacing_um: float | None) -> int:
        """The coarsest level whose pixel is no larger than ``spacing_um`` (0, the base, when none is or when
        ``spacing_um`` is None). 1 % larger counts as no larger: a level of an odd-sized level above is a little
        coarser than twice its pixel."""
        if spacing_um is None:
            return 0
        fine = [k for k in range(len(self.level_shapes)) if max(self.level_spacing(k)) <= spacing_um * 1.01]
        return max(fine) if fine else 0

    def read_window(self, level: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Pixels ``[y0:y1, x0:x1]`` of a level (clipped to it) as ``(C, rows, columns)``, decoding only the tiles
        or strips they overlap."""
        h, w = self.level_shapes[level]
        y0, y1, x0, x1 = max(0, y0), min(h, y1), max(0, x0), min(w, x1)
        pages = self._levels[level]
        out = np.zeros((len(self.channels), max(y1 - y0, 0), max(x1 - x0, 0)), dtype=self._dtype)
        plane = 0
        for page in pages:
            plane += _page_window(self._tif, page, y0, y1, x0, x1, out, plane)
            if plane >= len(self.channels):
                break
        return out

    def geometry_at(self, spacing_um: float | None) -> dict:
        """What :meth:`read_at` would give, without reading pixels: ``level``, ``block`` (the averaging factor),
        ``shape`` ((rows, columns)), ``spacing`` and ``origin`` (µm)."""
        level = self.level_for(spacing_um)
        sx, sy = self.level_spacing(level)
        factor = 1 if spacing_um is None else max(1, int(math.floor(spacing_um / max(sx, sy) + 1e-6)))
        h, w = self.level_shapes[level]
        if h < factor or w < factor:
            raise InputError(f"{self.path}: {h} x {w} pixels are fewer than one {factor} x {factor} block")
        return {"level": level, "block": factor, "shape": (h // factor, w // factor),
                "spacing": (sx * factor, sy * factor), "origin": self.level_origin(level, factor)}

    def read_at(self, spacing_um: float | None) -> SectionImage:
        """The slide at about ``spacing_um``: the coarsest level no coarser, averaged in blocks of whole pixels
        towards ``spacing_um`` (never coarser than it). ``None``: the base level as it is."""
        g = self.geometry_at(spacing_um)
        level, factor = g["level"], g["block"]
        h, w = self.level_shapes[level]
        data = self.read_window(level, 0, h, 0, w) if factor == 1 else self._block_mean(level, factor)
        if self._layout == "rgb" and data.dtype != np.uint8:  # colour stays 8-bit RGB (colour deconvolution)
            data = np.clip(np.rint(data), 0, 255).astype(np.uint8)
        return SectionImage(data=data, channels=list(self.channels), spacing=g["spacing"], origin=g["origin"],
                            metadata={"level": level, "block": factor, "path": self.path})

    def _block_mean(self, level: int, factor: int) -> np.ndarray:
        """Means of ``factor`` x ``factor`` blocks (float32), read in bands of rows (incomplete edge blocks are
        dropped, as a whole-pixel reduction must)."""
        h, w = self.level_shapes[level]
        oh, ow = h // factor, w // factor
        out = np.empty((len(self.channels), oh, ow), dtype=np.float32)
        row_bytes = w * len(self.channels) * 8
        band = max(1, BAND_BYTES // max(row_bytes * factor, 1))  # output rows per band
        for r0 in range(0, oh, band):
            r1 = min(oh, r0 + band)
            block = self.read_window(level, r0 * factor, r1 * factor, 0, ow * factor).astype(np.float64)
            out[:, r0:r1] = block.reshape(block.shape[0], r1 - r0, factor, ow, factor).mean(axis=(2, 4))
        return out


def _key(page):
    """The page that holds a page's structure: itself, or a TiffFrame's key frame."""
    return getattr(page, "keyframe", None) or page


def _page_yx(page) -> tuple[int, int]:
    shaped = _key(page).shaped  # (separate samples, depth, length, width, contig samples)
    return int(shaped[2]), int(shaped[3])


def _page_window(tif, page, y0: int, y1: int, x0: int, x1: int, out: np.ndarray, first: int) -> int:
    """Write one page's planes (separate, then contiguous samples) of the window into ``out[first:]``, from the
    segments the window overlaps; planes beyond ``out`` (an alpha sample) are dropped. Returns the page's number
    of planes."""
    key = _key(page)
    separate, _, height, width, contig = (int(v) for v in key.shaped)
    if y1 <= y0 or x1 <= x0:
        return separate * contig
    if key.is_tiled:
        seg_h, seg_w = int(key.tilelength), int(key.tilewidth)
    else:
        seg_h, seg_w = min(int(key.rowsperstrip or height), height), width
    ny, nx = -(-height // seg_h), -(-width // seg_w)
    offsets, counts = page.dataoffsets, page.databytecounts
    decode, tables = key.decode, key.jpegtables  # before any seek: making them may read the file
    fh = tif.filehandle
    for s in range(separate):
        for iy in range(y0 // seg_h, (y1 - 1) // seg_h + 1):
            for ix in range(x0 // seg_w, (x1 - 1) // seg_w + 1):
                index = (s * ny + iy) * nx + ix
                if index >= len(offsets) or not counts[index]:
                    continue  # an empty segment: zeros
                fh.seek(offsets[index])
                encoded = fh.read(counts[index])
                segment, _, _ = decode(encoded, index, jpegtables=tables)
                segment = segment.reshape(-1, segment.shape[-2], segment.shape[-1])  # (rows, columns, contig)
                top, left = iy * seg_h, ix * seg_w
                a0, a1 = max(y0, top), min(y1, top + segment.shape[0], height)
                b0, b1 = max(x0, left), min(x1, left + segment.shape[1], width)
                for c in range(contig):
                    k = first + s * contig + c
                    if k < out.shape[0]:
                        out[k, a0 - y0:a1 - y0, b0 - x0:b1 - x0] = segment[a0 - top:a1 - top, b0 - left:b1 - left, c]
    return separate * contig
