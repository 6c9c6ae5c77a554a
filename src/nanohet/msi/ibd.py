"""Raw .ibd access: byte ranges of spectra, memory mapping chunk by chunk, page-cache handling.

Nothing here knows about ions or images: it hands the streaming pass (:mod:`nanohet.msi.extract`)
typed views of the bytes holding a chunk of spectra, mapped so that resident memory stays about one
chunk whatever the size of the file.
"""

from __future__ import annotations

import ctypes
import mmap
import os

import numpy as np

from ..io.imzml import ImzMLIndex


def gather(mm: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, dtype: np.dtype, kern=None) -> np.ndarray:
    """Concatenate the arrays at byte ``offsets`` (``lengths`` elements each) from a uint8 memmap.

    Offsets need not be aligned: spectra are grouped by ``offset % itemsize``
    and each group is read through a typed view at that residue. With
    ``kern`` (the compiled kernels) the copy is one compiled loop.
    """
    total = int(lengths.sum())
    out = np.empty(total, dtype=dtype.newbyteorder("="))
    if total == 0:
        return out
    item = dtype.itemsize
    starts_out = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    residues = offsets % item
    for r in np.unique(residues):
        sel = residues == r
        n_elem = (mm.size - r) // item
        view = mm[r: r + n_elem * item].view(dtype)
        lens = lengths[sel]
        first = (offsets[sel] - r) // item
        if kern is not None:
            kern.copy_segments(view, first.astype(np.int64), lens.astype(np.int64), out,
                               starts_out[sel].astype(np.int64))
            continue
        # element index for every peak of the selected spectra
        idx = np.repeat(first - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(lens.sum())
        dest = np.repeat(starts_out[sel] - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(lens.sum())
        out[dest] = view[idx]
    return out


def typed_view(src: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, dtype: np.dtype, kern):
    """A typed array over ``src`` and each spectrum's element start in it.

    When every offset has the same alignment the bytes are viewed in place
    (no copy); otherwise the spectra are gathered into a new array.
    """
    item = dtype.itemsize
    residues = offsets % item
    r = int(residues[0]) if residues.size else 0
    if residues.size and np.all(residues == r):
        n_elem = (src.size - r) // item
        return src[r: r + n_elem * item].view(dtype), ((offsets - r) // item).astype(np.int64)
    flat = gather(src, offsets, lengths, dtype, kern)
    return flat, np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)


def residue_views(src: np.ndarray, offsets: np.ndarray, dtype: np.dtype):
    """Typed 2-D view of a byte buffer: row ``r`` reads the elements that start at bytes ``r (mod itemsize)``.

    imzML writers pack arrays back to back, so a float64 m/z array may start
    at any byte; the row/column pair locates each array without copying it
    (unaligned loads are fine on x86-64 and ARM64). Elements past the buffer
    end in rows ``r > 0`` are never read: every array lies inside ``src``.

    Returns
    -------
    views : ndarray, shape (itemsize, src.size // itemsize)
    row, col : ndarray of int64
        Row and element column of each offset.
    """
    item = dtype.itemsize
    n_elem = src.size // item
    base = src[: n_elem * item].view(dtype.newbyteorder("="))
    views = np.lib.stride_tricks.as_strided(base, shape=(item, n_elem), strides=(1, item), writeable=False)
    offsets = offsets.astype(np.int64)
    return views, offsets % item, offsets // item


_FADVISE = hasattr(os, "posix_fadvise")
_PAGE = mmap.PAGESIZE
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux: map and fault in the whole range in one call
try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _mincore = _libc.mincore
    _mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
except (OSError, AttributeError):  # no mincore (not Linux/BSD/macOS): treat every range as on disk
    _mincore = None


def resident(view: np.ndarray) -> bool:
    """True if every page of a fresh mapping ``view`` is in the page cache (mincore)."""
    if _mincore is None or view.size == 0:
        return False
    pages = np.zeros(-(-view.size // _PAGE), dtype=np.uint8)
    if _mincore(view.ctypes.data, view.size, pages.ctypes.data) != 0:
        return False
    return bool(np.all(pages & 1))


def chunk_ranges(index: ImzMLIndex, start: int, stop: int) -> list[tuple[int, int, int]]:
    """Byte ranges ``(first, end, bytes used)`` holding spectra ``start:stop``: one range, or two.

    Writers that store a block of m/z arrays and then the block's intensity
    arrays leave the two apart: they are then two ranges, so no unused bytes
    in between are touched. Continuous files share one m/z array (read once,
    before the pass): only the intensities' range is given.
    """
    lens = index.int_lengths[start:stop]
    ino = index.int_offsets[start:stop]
    i_range = (int(ino.min()), int((ino + lens * index.int_dtype.itemsize).max()),
               int(lens.sum()) * index.int_dtype.itemsize)
    if index.continuous:
        return [i_range]
    mzo = index.mz_offsets[start:stop]
    m_range = (int(mzo.min()), int((mzo + lens * index.mz_dtype.itemsize).max()),
               int(lens.sum()) * index.mz_dtype.itemsize)
    first, end = min(m_range[0], i_range[0]), max(m_range[1], i_range[1])
    if end - first <= (m_range[1] - m_range[0]) + (i_range[1] - i_range[0]) + (1 << 20):  # interleaved/adjacent
        return [(first, end, m_range[2] + i_range[2])]
    return [m_range, i_range]


def map_range(fh, mm: np.ndarray, first: int, end: int, need: int):
    """Bytes ``first:end`` of the .ibd (``need`` of which are used) and the file offset of the first one.

    A compact range is mapped on its own and released with its chunk, so
    resident memory stays about one chunk. If every page is already in the
    page cache (mincore) nothing more is done: the compiled loop's worker
    threads map the pages as they read them, spread evenly over the cores,
    instead of one helper thread competing with them for the cores (4.9 GB
    file, warm: 1.59 -> 1.17 s per pass, measured). Otherwise the range is
    read here, in the helper thread, in large sequential requests
    (``POSIX_FADV_WILLNEED``, then the pages are faulted in) while the
    workers process the previous chunk, so they never stall on small reads
    (4.9 GB file, cold: 3.3-3.8 s with this, 4.7-5.5 s leaving the faults to the
    workers, in 4 interleaved comparisons).
    A sparse range (arrays scattered over the file) is read through the
    memory map of the whole file.
    """
    if end <= first:
        return np.empty(0, np.uint8), first
    if end - first > 2 * need + (1 << 20):  # mostly other spectra's bytes
        return mm, 0
    aligned = first - first % mmap.ALLOCATIONGRANULARITY
    mapped = mmap.mmap(fh.fileno(), end - aligned, access=mmap.ACCESS_READ, offset=aligned)
    view = np.frombuffer(mapped, dtype=np.uint8)
    if not resident(view):  # checked before asking for the read: pages being read count as resident
        if _FADVISE:
            os.posix_fadvise(fh.fileno(), first, end - first, os.POSIX_FADV_WILLNEED)
        if _POPULATE:
            del view
            mapped.close()
            mapped = mmap.mmap(fh.fileno(), end - aligned, flags=mmap.MAP_SHARED | _POPULATE, prot=mmap.PROT_READ,
                               offset=aligned)
            view = np.frombuffer(mapped, dtype=np.uint8)
        else:
            view[::_PAGE].max()
    return view, aligned


def chunk_bytes(fh, mm: np.ndarray, index: ImzMLIndex, start: int, stop: int):
    """The bytes holding spectra ``start:stop``: ``(mz_src, mz_base, int_src, int_base)``.

    ``*_src`` is a uint8 array and ``*_base`` the file offset of its first
    byte (see :func:`chunk_ranges`); ``mz_src`` is None for continuous files.
    """
    ranges = [map_range(fh, mm, *r) for r in chunk_ranges(index, start, stop)]
    if index.continuous:
        return (None, 0, *ranges[0])
    return (*ranges[0], *ranges[-1])
