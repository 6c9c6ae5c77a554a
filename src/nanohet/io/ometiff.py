"""OME-TIFF reading and writing with channel names and physical pixel size.

Only what nanohet needs of OME: one 2-D image series per file (channels x Y x
X, or RGB), ``PhysicalSizeX/Y`` with units, channel names and the stage
position of the first plane as the image origin.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
import xml.etree.ElementTree as ET

import numpy as np
import tifffile

from ..atomic import atomic_path
from ..errors import InputError
from ..image import SectionImage, resolve_pixel_size

log = logging.getLogger("nanohet")

# Length units OME allows for PhysicalSize, as micrometres per unit.
_UM_PER_UNIT = {
    "µm": 1.0, "um": 1.0, "μm": 1.0, "micron": 1.0, "micrometer": 1.0,
    "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6, "Å": 1e-4,
}
_RGB_CHANNELS = ["R", "G", "B"]


ZLIB_LEVEL = 1


def write_ome_tiff(path: str | os.PathLike, image: SectionImage, *, compression: str = "zlib") -> None:
    """Write ``image`` as an OME-TIFF, atomically.

    Parameters
    ----------
    path : path-like
        Output file, conventionally ending in ``.ome.tif``.
    image : SectionImage
        The image. Three channels named R, G, B of dtype uint8 are written as
        an interleaved RGB image (what slide viewers expect); anything else
        as a ``CYX`` stack.
    compression : str
        TIFF compression; ``zlib`` (deflate, which every OME-TIFF reader decodes) is lossless and deterministic,
        written at level 1: on noisy microscopy and float fields as small as the default level 6, and 3x faster.
    """
    sx, sy = image.spacing
    ox, oy = image.origin
    is_rgb = image.channels == _RGB_CHANNELS and image.data.dtype == np.uint8
    n_planes = 1 if is_rgb else image.data.shape[0]
    metadata = {
        "axes": "YXS" if is_rgb else "CYX",
        "PhysicalSizeX": float(sx), "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": float(sy), "PhysicalSizeYUnit": "µm",
        "Plane": {
            "PositionX": [float(ox)] * n_planes, "PositionXUnit": ["µm"] * n_planes,
            "PositionY": [float(oy)] * n_planes, "PositionYUnit": ["µm"] * n_planes,
        },
    }
    # A content-derived UUID keeps files byte-identical across reruns
    # (tifffile would otherwise stamp a time-based one).
    digest = hashlib.sha256(image.data.tobytes())
    digest.update(repr((image.channels, image.spacing, image.origin)).encode())
    metadata["UUID"] = str(uuid.UUID(bytes=digest.digest()[:16], version=4))
    if not is_rgb:
        metadata["Channel"] = {"Name": list(image.channels)}
    data = np.moveaxis(image.data, 0, -1) if is_rgb else image.data
    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp, data, ome=True, photometric="rgb" if is_rgb else "minisblack",
            metadata=metadata, compression=compression,
            compressionargs={"level": ZLIB_LEVEL} if compression == "zlib" else None,
        )


def _ome_pixels(ome_xml: str):
    root = ET.fromstring(ome_xml)
    pixels = root.find(".//{*}Image/{*}Pixels")
    if pixels is None:
        raise ValueError("OME-XML has no Image/Pixels element")
    return pixels


def _physical_size(pixels, axis: str, path) -> float | None:
    value = pixels.get(f"PhysicalSize{axis}")
    if value is None:
        return None
    unit = pixels.get(f"PhysicalSize{axis}Unit", "µm")
    if unit not in _UM_PER_UNIT:
        raise InputError(f"{path}: PhysicalSize{axis}Unit {unit!r} is not a length unit nanohet knows")
    return float(value) * _UM_PER_UNIT[unit]


_MPP = re.compile(r"\bMPP\s*=\s*([0-9.eE+-]+)")


def vendor_metadata(tif: tifffile.TiffFile, series) -> dict | None:
    """Pixel size and channel names a vendor TIFF declares outside OME-XML, or None.

    * Aperio SVS: ``MPP = <µm per pixel>`` in the first page's ImageDescription.
    * Akoya/PerkinElmer QPTIFF: each full-resolution channel page's ImageDescription is XML with the channel's
      ``<Name>``; the pixel size comes from the page's resolution tags (pixels per centimetre).
    * Other TIFFs: the resolution tags when their unit is the centimetre, or ImageJ's ``unit=micron``.

    Returns
    -------
    dict or None
        ``spacing`` ((x, y) µm, or (None, None)), ``channels`` (list or None) and ``source`` (for messages).
    """
    page = series.pages[0] if series.pages else tif.pages[0]
    description = page.description or ""
    if description.startswith("Aperio "):
        m = _MPP.search(description)
        mpp = float(m.group(1)) if m else None
        return {"spacing": (mpp, mpp), "channels": None, "source": "the SVS description (MPP)"}
    if "<PerkinElmer-QPI-ImageDescription" in description:
        names = []
        for p in series.pages:
            text = getattr(p, "description", "") or ""
            m = re.search(r"<Name>([^<]*)</Name>", text)
            kind = re.search(r"<ImageType>([^<]*)</ImageType>", text)
            if m and (kind is None or kind.group(1).strip() == "FullResolution"):
                names.append(m.group(1).strip())
        return {"spacing": _tag_spacing(page), "channels": names or None,
                "source": "the QPTIFF resolution tags"}
    spacing = _tag_spacing(page)
    if spacing[0] is None and tif.imagej_metadata and str(tif.imagej_metadata.get("unit", "")).lower() in (
            "micron", "um", "µm", "\\u00b5m"):
        x = page.tags.get("XResolution")
        spacing = (1.0 / (x.value[0] / x.value[1]),) * 2 if x and x.value[0] else (None, None)
    if spacing[0] is None:
        return None
    return {"spacing": spacing, "channels": None, "source": "the TIFF resolution tags"}


def _tag_spacing(page) -> tuple[float | None, float | None]:
    """µm per pixel from XResolution/YResolution in pixels per centimetre (ResolutionUnit 3), else (None, None)."""
    unit = page.tags.get("ResolutionUnit")
    x, y = page.tags.get("XResolution"), page.tags.get("YResolution")
    if unit is None or int(unit.value) != 3 or x is None or not x.value[0]:
        return (None, None)
    per_cm_x = x.value[0] / x.value[1]
    per_cm_y = (y.value[0] / y.value[1]) if y is not None and y.value[0] else per_cm_x
    return (1e4 / per_cm_x, 1e4 / per_cm_y)


def _header(path) -> dict:
    """Axes, shape, photometric interpretation, OME-XML and vendor metadata of a TIFF's first series, without
    reading its pixels."""
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            ome_xml = tif.ome_metadata
            page = series.pages[0] if series.pages else tif.pages[0]
            extra = tuple(int(e) for e in (getattr(page, "extrasamples", ()) or ()))
            return {"axes": series.axes, "shape": tuple(series.shape), "ome_xml": ome_xml,
                    "photometric": int(getattr(page, "photometric", 0) or 0),
                    "alpha": bool(extra) and extra[0] in (1, 2),  # ExtraSamples: associated or unassociated alpha
                    "dtype": np.dtype(series.dtype),
                    "vendor": None if ome_xml else vendor_metadata(tif, series)}
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise InputError(f"{path}: not a readable TIFF ({exc})") from exc


def section_metadata(path: str | os.PathLike, *, pixel_size_um: float | None = None,
                     channel_names: list[str] | None = None) -> dict:
    """What :func:`read_ome_tiff` would return but the pixels: ``channels``, ``spacing`` (µm), ``origin`` (µm),
    and how the pixels are laid out (``layout``: ``rgb`` or ``channels``, with ``axes``); the same errors and
    warnings. Reads the header only (the pre-run check uses it)."""
    head = _header(path)
    axes, shape = head["axes"].replace("Q", "C").replace("I", "C"), head["shape"]
    spacing, origin, names = (None, None), (0.0, 0.0), None
    if head["ome_xml"]:
        try:
            pixels = _ome_pixels(head["ome_xml"])
        except (ET.ParseError, ValueError) as exc:
            raise InputError(f"{path}: malformed OME-XML ({exc})") from exc
        spacing = (_physical_size(pixels, "X", path), _physical_size(pixels, "Y", path))
        plane = pixels.find("{*}Plane")
        if plane is not None and plane.get("PositionX") is not None:
            ux = _UM_PER_UNIT.get(plane.get("PositionXUnit", "µm"), 1.0)
            uy = _UM_PER_UNIT.get(plane.get("PositionYUnit", "µm"), 1.0)
            origin = (float(plane.get("PositionX")) * ux, float(plane.get("PositionY", 0.0)) * uy)
        ome_names = [c.get("Name") for c in pixels.findall("{*}Channel")]
        if ome_names and all(ome_names):
            names = ome_names
    source = "the file (OME PhysicalSizeX/Y)"
    if head["vendor"] is not None:
        spacing, source = head["vendor"]["spacing"], head["vendor"]["source"]
        names = head["vendor"]["channels"] or names
    samples = shape[axes.index("S")] if "S" in axes else 0
    # colour: 8-bit with 3 samples, or RGB with an alpha sample (dropped). Writers store any 3- or 4-plane array
    # as RGB(A) (tifffile does), so 16-bit or float samples are fluorescence channels, whatever the tags say.
    colour = head["dtype"] == np.uint8 and (samples == 3 or (samples == 4 and head["photometric"] == 2
                                                              and head["alpha"]))
    if colour:
        if samples == 4:
            log.warning("%s: an RGBA image; the alpha channel is dropped", path)
        layout, n, names = "rgb", 3, list(_RGB_CHANNELS)
    elif samples:
        layout, n = "samples", samples  # several samples per pixel that are not colour: channels
    elif len(shape) == 2:
        layout, n = "channels", 1
    elif len(shape) == 3 and axes[-2:] == "YX":
        layout, n = "channels", shape[0]
    else:
        raise InputError(f"{path}: expected a 2-D image with channels, got axes {head['axes']!r} shape {shape}")
    if names is not None and len(names) != n:
        names = None  # names that do not fit the layout (e.g. OME channel of an RGB plane): the defaults
    if names is None:
        names = list(channel_names) if channel_names else [f"C{i}" for i in range(n)]
    elif channel_names and list(channel_names) != names:
        if len(channel_names) != len(names):
            raise InputError(f"{path}: {len(channel_names)} channel names in the sample sheet for the file's "
                             f"{len(names)} channels {names}")
        log.warning("%s: the sample sheet's channel names %s override the file's %s", path, list(channel_names),
                    names)
        names = list(channel_names)
    if len(names) != n:
        raise InputError(f"{path}: {len(names)} channel names given for {n} channels")
    return {"channels": names, "spacing": resolve_pixel_size(spacing, pixel_size_um, path, source), "origin": origin,
            "layout": layout, "axes": axes}


def read_ome_tiff(
    path: str | os.PathLike,
    *,
    pixel_size_um: float | None = None,
    channel_names: list[str] | None = None,
) -> SectionImage:
    """Read a 2-D (multi-channel or RGB) OME-TIFF, vendor TIFF (QPTIFF, SVS) or plain TIFF.

    Parameters
    ----------
    path : path-like
        The file.
    pixel_size_um : float, optional
        Pixel size for a file that declares none (a plain TIFF), or overriding the file's: the sample sheet
        wins, with a warning when the two differ by more than 1 % (:func:`~nanohet.image.resolve_pixel_size`).
    channel_names : list of str, optional
        Names for a file without them, or overriding the file's (a warning when they differ).

    Returns
    -------
    SectionImage
        Data as ``(C, Y, X)``; RGB files give channels ``R, G, B``; samples per pixel that are not colour (a
        4-channel plain TIFF) are channels.

    Raises
    ------
    InputError
        When the file is unreadable, has no pixel size from any source, or the number of channel names does
        not match.
    """
    meta = section_metadata(path, pixel_size_um=pixel_size_um, channel_names=channel_names)
    try:
        with tifffile.TiffFile(path) as tif:
            data = tif.series[0].asarray()
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise InputError(f"{path}: not a readable TIFF ({exc})") from exc
    axes = meta["axes"]
    if meta["layout"] in ("rgb", "samples"):
        data = np.moveaxis(data, axes.index("S"), 0)
        data = data[:3] if meta["layout"] == "rgb" else data
    elif data.ndim == 2:
        data = data[np.newaxis]
    return SectionImage(data=data, channels=meta["channels"], spacing=meta["spacing"], origin=meta["origin"])
