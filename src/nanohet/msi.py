"""One streaming pass over an imzML file: ion images, TIC and a mean spectrum.

The .ibd is read in chunks of spectra (each chunk mapped on its own while the
previous one is processed); a compiled kernel (:mod:`nanohet._msi_kernels`)
scans every peak once, with a vectorised numpy path kept as the reference.
Memory stays bounded by the chunk size whatever the size of the file.
"""

from __future__ import annotations

import ctypes
import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .image import resolve_pixel_size
from .imzml import ImzMLIndex


@dataclass(frozen=True)
class IonTarget:
    """An ion to image.

    Attributes
    ----------
    name : str
        Analyte name, used as the image channel name.
    mz : float
        Target m/z (for example doxorubicin [M+H]+ 544.1813).
    ppm : float
        Half-width of the extraction window in parts per million of ``mz``.
    """

    name: str
    mz: float
    ppm: float

    @property
    def window(self) -> tuple[float, float]:
        half = self.mz * self.ppm * 1e-6
        return self.mz - half, self.mz + half


@dataclass
class MSIImages:
    """Result of :func:`extract_ion_images`.

    Attributes
    ----------
    images : dict of str to ndarray, shape (Y, X), float32
        Raw (un-normalised) ion images; NaN where no spectrum was acquired.
        Window sums are accumulated in float64 and stored in float32.
    tic, rms, median : ndarray, shape (Y, X)
        Per-pixel total ion current, root mean square and median intensity
        of the spectrum (normalisation factors); NaN where not acquired.
    acquired : ndarray of bool, shape (Y, X)
        True where a spectrum exists. Non-acquired pixels are never zero signal.
    pixel_size : tuple of float
        ``(x, y)`` in µm.
    origin : tuple of float
        Physical ``(x, y)`` position of pixel [0, 0] in µm: the file's stage
        origin (if declared) plus the grid offset of the first acquired
        column/row relative to instrument pixel (1, 1).
    mean_spectrum : (ndarray, ndarray)
        Bin centres (m/z) and mean intensity per acquired pixel.
    lock_mass_ppm : ndarray or None
        Per-pixel ppm error found at the lock mass (NaN where not found).
    top_peaks : list of str
        Names of the images of the mean spectrum's most intense peaks.
    """

    images: dict[str, np.ndarray]
    tic: np.ndarray
    rms: np.ndarray
    median: np.ndarray
    acquired: np.ndarray
    pixel_size: tuple[float, float]
    origin: tuple[float, float]
    mean_spectrum: tuple[np.ndarray, np.ndarray] = field(default=(np.zeros(0), np.zeros(0)))
    lock_mass_ppm: np.ndarray | None = None
    top_peaks: list[str] = field(default_factory=list)


def _gather(mm: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, dtype: np.dtype, kern=None) -> np.ndarray:
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


def _typed_view(src: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, dtype: np.dtype, kern):
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
    flat = _gather(src, offsets, lengths, dtype, kern)
    return flat, np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)


def _residue_views(src: np.ndarray, offsets: np.ndarray, dtype: np.dtype):
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


def _resident(view: np.ndarray) -> bool:
    """True if every page of a fresh mapping ``view`` is in the page cache (mincore)."""
    if _mincore is None or view.size == 0:
        return False
    pages = np.zeros(-(-view.size // _PAGE), dtype=np.uint8)
    if _mincore(view.ctypes.data, view.size, pages.ctypes.data) != 0:
        return False
    return bool(np.all(pages & 1))


def _chunk_ranges(index: ImzMLIndex, start: int, stop: int) -> list[tuple[int, int, int]]:
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


def _map_range(fh, mm: np.ndarray, first: int, end: int, need: int):
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
    if not _resident(view):  # checked before asking for the read: pages being read count as resident
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



def _chunk_bytes(fh, mm: np.ndarray, index: ImzMLIndex, start: int, stop: int):
    """The bytes holding spectra ``start:stop``: ``(mz_src, mz_base, int_src, int_base)``.

    ``*_src`` is a uint8 array and ``*_base`` the file offset of its first
    byte (see :func:`_chunk_ranges`); ``mz_src`` is None for continuous files.
    """
    ranges = [_map_range(fh, mm, *r) for r in _chunk_ranges(index, start, stop)]
    if index.continuous:
        return (None, 0, *ranges[0])
    return (*ranges[0], *ranges[-1])


BLOCKS_PER_CHUNK = 8  # parallel work items per chunk: an even split over 1, 2, 4 or 8 threads


def block_starts(lengths, block_peaks: int):
    """Split spectra into blocks of about ``block_peaks`` peaks: the start of each block, and ``len(lengths)``.

    A block is a run of whole spectra (a longer spectrum is a block of its
    own). Blocks depend only on the data and ``block_peaks``, never on the
    number of threads, and each block sums its own part of the mean spectrum,
    so results are the same with any number of threads.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    before = np.cumsum(lengths) - lengths  # peaks before each spectrum
    block = before // max(int(block_peaks), 1)
    starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]]) if lengths.size else np.zeros(0, np.int64)
    return np.r_[starts, lengths.size].astype(np.int64)


def _window_layers(targets: list[IonTarget]) -> list[list[int]]:
    """Split targets into groups whose m/z windows do not overlap."""
    order = sorted(range(len(targets)), key=lambda k: targets[k].window[0])
    layers: list[list[int]] = []
    for k in order:
        for layer in layers:
            if targets[layer[-1]].window[1] < targets[k].window[0]:
                layer.append(k)
                break
        else:
            layers.append([k])
    return layers


def grid_positions(index: ImzMLIndex):
    """Map 1-based instrument coordinates to a compact 0-based grid.

    Returns
    -------
    rows, cols : ndarray of int
        Grid position of every spectrum.
    shape : tuple of int
        ``(Y, X)`` of the grid.
    offset : tuple of int
        ``(x0, y0)`` 0-based index of the grid's first column/row in
        instrument pixels (kept so the grid origin is known physically).
    """
    x = index.coords[:, 0]
    y = index.coords[:, 1]
    x0, y0 = int(x.min()), int(y.min())
    shape = (int(y.max() - y0 + 1), int(x.max() - x0 + 1))
    return y - y0, x - x0, shape, (x0 - 1, y0 - 1)


def extract_ion_images(
    index: ImzMLIndex,
    targets: list[IonTarget],
    *,
    pixel_size_um: float | None = None,
    reduce: str = "sum",
    chunk_peaks: int = 4_000_000,
    mean_spectrum_bin_mz: float = 0.005,
    mz_range: tuple[float, float] | None = None,
    lock_mass: IonTarget | None = None,
    top_n: int = 0,
    top_n_ppm: float = 25.0,
    median: bool = False,
    engine: str = "auto",
    progress=None,
) -> MSIImages:
    """Extract ion images and normalisation factors in one streaming pass.

    Parameters
    ----------
    index : ImzMLIndex
        From :func:`nanohet.imzml.read_imzml_index`.
    targets : list of IonTarget
        Ions to image; windows may overlap.
    pixel_size_um : float, optional
        Used when the file declares no pixel size. If both exist they must
        agree within 1 %.
    reduce : {"sum", "max"}
        How intensities inside a window are combined.
    chunk_peaks : int
        Approximate number of peaks read per chunk (bounds memory: about
        30 bytes per peak). Each chunk is processed in parallel as
        ``BLOCKS_PER_CHUNK`` blocks of whole spectra, so long spectra (profile
        data) are spread over the cores too.
    mean_spectrum_bin_mz : float
        Bin width of the mean spectrum, in m/z units (linear bins: one
        multiplication per peak).
    mz_range : (float, float), optional
        m/z range of the mean spectrum; by default the m/z extent of about
        100 evenly strided spectra (and of the targets), ±1 %. Peaks outside
        it are left out of the mean spectrum (not out of the ion images).
    lock_mass : IonTarget, optional
        Reference ion for recalibration: in each spectrum the most intense
        peak within ``lock_mass.ppm`` of ``lock_mass.mz`` gives that
        spectrum's ppm error, which is removed from all its m/z values
        before windowing (spectra without the peak are left as they are).
    median : bool
        Also compute each spectrum's median intensity (a sort of every
        peak: only when median normalisation is wanted); else NaN.
    top_n : int
        Also image the ``top_n`` most intense peaks of the mean spectrum
        (estimated from an evenly strided subset of at most 2000 spectra, so
        the full data are still read once); they are named ``mz<value>``.
    top_n_ppm : float
        Half-window of the top-N peak images (at least one mean-spectrum bin).
    engine : {"auto", "numba", "numpy"}
        Processed data are scanned by a compiled kernel (numba) when
        available; ``numpy`` forces the vectorised reference path (same
        results; used by the tests to cross-check the kernel).
    progress : callable, optional
        Called as ``progress(done_spectra, total_spectra)`` after each chunk.

    Returns
    -------
    MSIImages
    """
    if reduce not in ("sum", "max"):
        raise ValueError(f"reduce must be 'sum' or 'max', got {reduce!r}")
    pixel_size = resolve_pixel_size(index.pixel_size, pixel_size_um, index.imzml_path)
    n = index.n_spectra
    if mz_range is None:
        mz_range = _mz_extent(index, [t.mz for t in targets])
    top_targets = []
    if top_n > 0:
        top_targets = _top_peaks(index, targets, top_n, mean_spectrum_bin_mz, mz_range, pixel_size, top_n_ppm)
        targets = list(targets) + top_targets
    k_targets = len(targets)
    # results go straight into the image stack chunk by chunk (no spectra x targets table)
    rows, cols, shape, (x0, y0) = grid_positions(index)
    # every acquired pixel of every image is written by the pass; only the others are set here (NaN)
    # float32 like the OME-TIFF it becomes (each pixel's window sum is accumulated in float64 first): half the
    # memory and memory traffic of float64
    stack_img = np.empty((k_targets,) + shape, dtype=np.float32)
    not_acquired = np.ones(shape, dtype=bool)
    not_acquired[rows, cols] = False
    stack_img[:, not_acquired] = np.nan
    tic = np.zeros(n)
    sumsq = np.zeros(n)
    medians = np.full(n, np.nan)
    lo = np.array([t.window[0] for t in targets])
    hi = np.array([t.window[1] for t in targets])
    layers = _window_layers(targets)

    inv_width = 1.0 / mean_spectrum_bin_mz
    n_bins = int(np.ceil((mz_range[1] - mz_range[0]) * inv_width))
    spectrum_sum = np.zeros(n_bins)
    lock_ppm = np.full(n, np.nan)

    use_kernel = False
    if engine not in ("auto", "numba", "numpy"):
        raise ValueError(f"engine must be auto, numba or numpy, got {engine!r}")
    if engine != "numpy" and not (index.continuous and lock_mass is not None):
        try:
            from . import _msi_kernels as kern
            use_kernel = True
        except ImportError:
            if engine == "numba":
                raise
    if use_kernel:
        order = np.argsort(lo, kind="stable")
        k_lo, k_hi = lo[order], hi[order]
        k_maxhi = np.maximum.accumulate(k_hi) if k_hi.size else k_hi
        lock_args = ((lock_mass.mz, *lock_mass.window, True) if lock_mass is not None else (0.0, 0.0, 0.0, False))
        lut_args = kern.window_lut(k_lo)
        near_window = kern.window_bins(k_lo, k_hi, mz_range[0], inv_width, n_bins)

    mm = np.memmap(index.ibd_path, dtype=np.uint8, mode="r")
    fh = open(index.ibd_path, "rb", buffering=0)
    prefetch = None
    try:
        if index.continuous:
            axis = _gather(mm, index.mz_offsets[:1], index.mz_lengths[:1], index.mz_dtype).astype(np.float64)
            cols_lo = np.searchsorted(axis, lo, side="left")
            cols_hi = np.searchsorted(axis, hi, side="right")
            bins_axis = np.floor((axis - mz_range[0]) * inv_width).astype(np.int64)
            in_range = (bins_axis >= 0) & (bins_axis < n_bins)
            col_bin = np.where(in_range, bins_axis, -1).astype(np.int64)
        # chunks of BLOCKS_PER_CHUNK blocks of about chunk_peaks / BLOCKS_PER_CHUNK peaks (whole spectra)
        blocks = block_starts(index.int_lengths, max(1, chunk_peaks // BLOCKS_PER_CHUNK))
        chunk_edges = np.r_[blocks[:-1:BLOCKS_PER_CHUNK], n] if n else np.zeros(1, np.int64)
        bounds = [(int(a), int(b)) for a, b in zip(chunk_edges[:-1], chunk_edges[1:])]
        largest = max((b - a for a, b in bounds), default=0)
        values = None if use_kernel else np.zeros((largest, k_targets))  # numpy path: per-chunk results
        if use_kernel:  # per-block mean-spectrum scratch, reused by every chunk
            scratch = (np.zeros((BLOCKS_PER_CHUNK, axis.size)) if index.continuous
                       else np.zeros((BLOCKS_PER_CHUNK, max(n_bins, 1)), dtype=np.float32))
        stack_flat = stack_img.reshape(k_targets, shape[0] * shape[1])
        pixel_of = rows * shape[1] + cols
        # a helper thread maps the next chunk (reading it from disk if needed) while the kernel works on this one
        prefetch = ThreadPoolExecutor(max_workers=1) if use_kernel else None
        pending = prefetch.submit(_chunk_bytes, fh, mm, index, *bounds[0]) if use_kernel and bounds else None
        for c_i, (start, stop) in enumerate(bounds):
            lens = index.int_lengths[start:stop]
            m = stop - start
            local_blocks = blocks[c_i * BLOCKS_PER_CHUNK: (c_i + 1) * BLOCKS_PER_CHUNK + 1] - start
            cv = None if use_kernel else values[:m]
            if use_kernel:
                mz_src, mz_base, src, base = pending.result()  # src/base: the intensities' bytes
                pending = (prefetch.submit(_chunk_bytes, fh, mm, index, *bounds[c_i + 1])
                           if c_i + 1 < len(bounds) else None)
            else:
                cv[:] = 0.0
            if use_kernel and index.continuous:
                flat, fstarts = _typed_view(src, index.int_offsets[start:stop] - base, lens, index.int_dtype, kern)
                width = axis.size
                if np.all(np.diff(fstarts) == width) and fstarts[0] + m * width <= flat.size:
                    block = flat[fstarts[0]: fstarts[0] + m * width].reshape(m, width)
                else:
                    block = _gather(src, index.int_offsets[start:stop] - base, lens, index.int_dtype,
                                    kern).reshape(m, width)
                kern.process_continuous(block, local_blocks, cols_lo.astype(np.int64), cols_hi.astype(np.int64),
                                        reduce == "max", col_bin, n_bins, tic[start:stop], sumsq[start:stop],
                                        spectrum_sum, scratch, stack_flat, pixel_of[start:stop])
                if median:
                    medians[start:stop] = np.median(block, axis=1)
            elif use_kernel:
                mz_v, mz_row, mz_col = _residue_views(mz_src, index.mz_offsets[start:stop] - mz_base, index.mz_dtype)
                it_v, it_row, it_col = _residue_views(src, index.int_offsets[start:stop] - base, index.int_dtype)
                lerr = np.full(m, np.nan)
                kern.process_peaks(mz_v, it_v, mz_row, mz_col, it_row, it_col, lens.astype(np.int64), local_blocks,
                                   k_lo, k_hi, k_maxhi, order.astype(np.int64), reduce == "max", *lock_args,
                                   mz_range[0], inv_width, n_bins, *lut_args, near_window, tic[start:stop],
                                   sumsq[start:stop], lerr, spectrum_sum, scratch, stack_flat, pixel_of[start:stop])
                lock_ppm[start:stop] = lerr * 1e6
                if median:
                    spec = np.repeat(np.arange(m), lens)
                    flat = _gather(src, index.int_offsets[start:stop] - base, lens, index.int_dtype, kern)
                    medians[start:stop] = _segment_median(flat.astype(np.float64), spec, lens, m)
            else:  # numpy reference path
                ints = _gather(mm, index.int_offsets[start:stop], lens, index.int_dtype).astype(np.float64)
                spec = np.repeat(np.arange(m), lens)
                tic[start:stop] = np.bincount(spec, weights=ints, minlength=m)
                sumsq[start:stop] = np.bincount(spec, weights=ints * ints, minlength=m)
                if index.continuous:
                    block = ints.reshape(m, axis.size)
                    if lock_mass is None:
                        for k in range(k_targets):
                            seg = block[:, cols_lo[k]:cols_hi[k]]
                            if seg.shape[1]:
                                cv[:, k] = seg.sum(axis=1) if reduce == "sum" else seg.max(axis=1)
                    else:
                        err = _lock_error_continuous(axis, block, lock_mass)
                        lock_ppm[start:stop] = err * 1e6
                        shift = 1 + np.nan_to_num(err)[:, None]
                        rlo = np.searchsorted(axis, lo[None, :] * shift, side="left")
                        rhi = np.searchsorted(axis, hi[None, :] * shift, side="right")
                        for k in range(k_targets):
                            a, b = rlo[:, k].min(), rhi[:, k].max()
                            if b <= a:
                                continue
                            cidx = np.arange(a, b)
                            inside = (cidx >= rlo[:, k:k + 1]) & (cidx < rhi[:, k:k + 1])
                            seg = block[:, a:b]
                            masked = np.where(inside, seg, 0)
                            cv[:, k] = masked.sum(axis=1) if reduce == "sum" else masked.max(axis=1)
                    if median:
                        medians[start:stop] = np.median(block, axis=1)
                    spectrum_sum += np.bincount(bins_axis[in_range], weights=block[:, in_range].sum(axis=0),
                                                minlength=n_bins)
                else:
                    mz = _gather(mm, index.mz_offsets[start:stop], lens, index.mz_dtype).astype(np.float64)
                    if lock_mass is not None:
                        err = _lock_error_processed(mz, ints, spec, m, lock_mass)
                        lock_ppm[start:stop] = err * 1e6
                        mz = mz / (1 + np.nan_to_num(err)[spec])
                    local = np.zeros(m * k_targets)
                    for layer in layers:
                        layer_lo, layer_hi = lo[layer], hi[layer]
                        pos = np.searchsorted(layer_lo, mz, side="right") - 1
                        ok = pos >= 0
                        ok[ok] &= mz[ok] <= layer_hi[pos[ok]]
                        key = spec[ok] * k_targets + np.asarray(layer)[pos[ok]]
                        if reduce == "sum":
                            local += np.bincount(key, weights=ints[ok], minlength=m * k_targets)
                        else:
                            np.maximum.at(local, key, ints[ok])
                    cv[:] = local.reshape(m, k_targets)
                    if median:
                        medians[start:stop] = _segment_median(ints, spec, lens, m)
                    x = (mz - mz_range[0]) * inv_width
                    sel = (x >= 0) & (x < n_bins)  # NaN m/z: in no bin
                    spectrum_sum += np.bincount(x[sel].astype(np.int64), weights=ints[sel], minlength=n_bins)
                stack_img[:, rows[start:stop], cols[start:stop]] = cv.T
            src = mz_src = mz_v = it_v = flat = block = None  # release this chunk's mappings
            if progress is not None:
                progress(stop, n)
    finally:
        if prefetch is not None:
            prefetch.shutdown(wait=True)
        fh.close()
        del mm

    def to_image(v):
        img = np.full(shape, np.nan)
        img[rows, cols] = v
        return img

    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt(sumsq / np.maximum(index.int_lengths, 1))
    acquired = np.zeros(shape, dtype=bool)
    acquired[rows, cols] = True
    centres = mz_range[0] + (np.arange(n_bins) + 0.5) * mean_spectrum_bin_mz
    return MSIImages(
        lock_mass_ppm=to_image(lock_ppm) if lock_mass is not None else None,
        top_peaks=[t.name for t in top_targets],
        images={t.name: stack_img[k] for k, t in enumerate(targets)},
        tic=to_image(tic), rms=to_image(rms), median=to_image(medians), acquired=acquired,
        pixel_size=pixel_size,
        origin=(index.stage_origin[0] + x0 * pixel_size[0], index.stage_origin[1] + y0 * pixel_size[1]),
        mean_spectrum=(centres, spectrum_sum / n),
    )


def _mz_extent(index: ImzMLIndex, target_mzs) -> tuple[float, float]:
    # 100 evenly spaced spectra: each is a random read on a cold disk, and ±1 % margins absorb the rest
    stride = max(1, index.n_spectra // 100)
    sel = slice(None, None, stride) if not index.continuous else slice(0, 1)
    mm = np.memmap(index.ibd_path, dtype=np.uint8, mode="r")
    try:
        mz = _gather(mm, index.mz_offsets[sel], index.mz_lengths[sel], index.mz_dtype)
    finally:
        del mm
    values = np.concatenate([mz[np.isfinite(mz) & (mz > 0)], np.asarray(target_mzs, float)])
    if values.size == 0:
        return (100.0, 1000.0)
    return (0.99 * float(values.min()), 1.01 * float(values.max()))


def _lock_error_processed(mz, ints, spec, m, lock: IonTarget) -> np.ndarray:
    """Relative m/z error of each spectrum at its most intense peak near the lock mass (NaN if none)."""
    lo, hi = lock.window
    sel = np.flatnonzero((mz >= lo) & (mz <= hi))
    err = np.full(m, np.nan)
    if sel.size:
        order = sel[np.lexsort((ints[sel], spec[sel]))]
        last = np.r_[spec[order][1:] != spec[order][:-1], True]  # most intense per spectrum
        best = order[last]
        err[spec[best]] = (mz[best] - lock.mz) / lock.mz
    return err


def _lock_error_continuous(axis, block, lock: IonTarget) -> np.ndarray:
    lo, hi = lock.window
    a, b = np.searchsorted(axis, lo, "left"), np.searchsorted(axis, hi, "right")
    err = np.full(block.shape[0], np.nan)
    if b > a:
        seg = block[:, a:b]
        found = seg.max(axis=1) > 0
        err[found] = (axis[a + seg[found].argmax(axis=1)] - lock.mz) / lock.mz
    return err


def _top_peaks(index: ImzMLIndex, targets, top_n: int, bin_mz: float, mz_range, pixel_size, top_ppm: float):
    """Targets for the ``top_n`` most intense local maxima of a subsampled mean spectrum."""
    from dataclasses import replace

    stride = max(1, index.n_spectra // 2000)
    sub = replace(index, **{k: getattr(index, k)[::stride] for k in
                            ("coords", "mz_offsets", "mz_lengths", "int_offsets", "int_lengths")})
    mz, mean = extract_ion_images(sub, [], pixel_size_um=pixel_size[0], mz_range=mz_range,
                                  mean_spectrum_bin_mz=bin_mz).mean_spectrum
    peak = (mean > np.roll(mean, 1)) & (mean >= np.roll(mean, -1)) & (mean > 0)
    taken = np.zeros(mz.size, bool)
    for t in targets:
        lo, hi = t.window
        taken |= (mz >= lo) & (mz <= hi)
    candidates = np.flatnonzero(peak & ~taken)
    best = candidates[np.argsort(mean[candidates])[::-1][:top_n]]
    return [IonTarget(f"mz{mz[i]:.4f}", float(mz[i]), max(top_ppm, bin_mz / mz[i] * 1e6)) for i in sorted(best)]


def _segment_median(values: np.ndarray, seg: np.ndarray, lengths: np.ndarray, m: int) -> np.ndarray:
    """Median of each segment of a flat array (segments given by ``seg`` ids)."""
    if values.size == 0:
        return np.zeros(m)
    order = np.lexsort((values, seg))
    sorted_vals = values[order]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    out = np.zeros(m)
    has = lengths > 0
    lo_idx = starts[has] + (lengths[has] - 1) // 2
    hi_idx = starts[has] + lengths[has] // 2
    out[has] = 0.5 * (sorted_vals[lo_idx] + sorted_vals[hi_idx])
    return out


def normalise(image: np.ndarray, method: str, *, msi: MSIImages, reference: str | None = None) -> np.ndarray:
    """Normalise an ion image pixel by pixel.

    Parameters
    ----------
    image : ndarray
        Raw ion image.
    method : {"none", "tic", "rms", "median", "internal_standard"}
        ``tic``: divide by the total ion current (result: fraction of TIC).
        ``rms``/``median``: divide by the spectrum's RMS/median intensity.
        ``internal_standard``: divide by the internal-standard ion image
        named ``reference`` (a homogeneously sprayed standard corrects ion
        suppression; Giordano et al., Sci Rep 2016;6:37027).
        TIC/RMS normalisation as in Cardinal's ``normalize`` (Bemis et al.,
        Bioinformatics 2015;31:2418).
    msi : MSIImages
        Source of the normalisation factors.
    reference : str, optional
        Internal-standard image name for ``internal_standard``.

    Returns
    -------
    ndarray
        Normalised image; NaN where the factor is zero or not acquired.
    """
    if method == "none":
        return image.copy()
    if method == "internal_standard":
        if reference is None or reference not in msi.images:
            raise InputError(f"internal_standard normalisation needs a configured standard ion, got {reference!r}")
        factor = msi.images[reference]
    elif method in ("tic", "rms", "median"):
        factor = getattr(msi, method)
    else:
        raise InputError(f"unknown normalisation {method!r}; use none, tic, rms, median or internal_standard")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = image / factor
    out[~np.isfinite(out)] = np.nan
    return out


def clip_hotspots(image: np.ndarray, percentile: float | None) -> np.ndarray:
    """Clip values above the given percentile of the finite pixels (METASPACE uses 99)."""
    if percentile is None or not np.isfinite(image).any():
        return image
    top = np.nanpercentile(image, percentile)
    return np.where(np.isfinite(image), np.minimum(image, top), np.nan)
