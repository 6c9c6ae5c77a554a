"""One streaming pass over an imzML file: ion images, TIC and a mean spectrum.

The .ibd is read in chunks of spectra, each mapped on its own (:mod:`nanohet.msi.ibd`) while the
previous one is processed; a compiled kernel (:mod:`nanohet.msi.kernels`) scans every peak once, with a
vectorised numpy path (:mod:`nanohet.msi.reference`) kept as the reference. Memory stays bounded by the
chunk size whatever the size of the file.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..image import resolve_pixel_size
from ..io.imzml import ImzMLIndex
from ..parallel import available_cpus
from .ibd import chunk_bytes, gather, residue_views, typed_view
from .reference import numpy_chunk, segment_median


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
    def half_width(self) -> float:
        """Half the extraction window, in m/z."""
        return self.mz * self.ppm * 1e-6

    @property
    def window(self) -> tuple[float, float]:
        return self.mz - self.half_width, self.mz + self.half_width


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


@dataclass
class PassState:
    """Constants and accumulators of one streaming pass, shared by the kernel and the numpy path.

    Per spectrum (length ``n``): ``tic``, ``sumsq``, ``medians``, ``lock_ppm``. ``stack_img`` is the
    (targets, Y, X) float32 image stack the chunk results are written into; ``spectrum_sum`` the summed
    mean-spectrum bins. For continuous files ``axis`` is the shared m/z array, ``cols_lo/hi`` each
    target's columns and ``bins_axis``/``in_range`` the mean-spectrum bin of each column.
    """

    index: ImzMLIndex
    lo: np.ndarray
    hi: np.ndarray
    reduce_max: bool
    lock_mass: IonTarget | None
    median: bool
    mz_range: tuple
    inv_width: float
    n_bins: int
    rows: np.ndarray
    cols: np.ndarray
    shape: tuple
    stack_img: np.ndarray
    offset: tuple = (0, 0)  # (x0, y0): the grid's first column/row in instrument pixels (0-based)
    tic: np.ndarray = None
    sumsq: np.ndarray = None
    medians: np.ndarray = None
    lock_ppm: np.ndarray = None
    spectrum_sum: np.ndarray = None
    axis: np.ndarray | None = None
    cols_lo: np.ndarray | None = None
    cols_hi: np.ndarray | None = None
    bins_axis: np.ndarray | None = None
    in_range: np.ndarray | None = None
    stack_flat: np.ndarray = None
    pixel_of: np.ndarray = None

    def __post_init__(self):
        n = self.index.n_spectra
        self.tic, self.sumsq = np.zeros(n), np.zeros(n)
        self.medians, self.lock_ppm = np.full(n, np.nan), np.full(n, np.nan)
        self.spectrum_sum = np.zeros(self.n_bins)
        self.stack_flat = self.stack_img.reshape(self.lo.size, self.shape[0] * self.shape[1])
        self.pixel_of = self.rows * self.shape[1] + self.cols  # flat image index of each spectrum

    def read_axis(self, mm: np.ndarray) -> None:
        """Continuous files: the shared m/z axis, each target's columns and each column's mean-spectrum bin."""
        index = self.index
        self.axis = gather(mm, index.mz_offsets[:1], index.mz_lengths[:1], index.mz_dtype).astype(np.float64)
        self.cols_lo = np.searchsorted(self.axis, self.lo, side="left")
        self.cols_hi = np.searchsorted(self.axis, self.hi, side="right")
        self.bins_axis = np.floor((self.axis - self.mz_range[0]) * self.inv_width).astype(np.int64)
        self.in_range = (self.bins_axis >= 0) & (self.bins_axis < self.n_bins)


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
    threads: int | None = None,
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
        ``auto``: the compiled kernel (numba) for files above
        :data:`AUTO_NUMPY_PEAKS` peaks, the vectorised path below, where a
        new process would spend longer loading (or compiling) the kernel
        than the numpy path takes; ``numpy`` forces the reference path (same
        results; used by the tests to cross-check the kernel).
    threads : int, optional
        Threads of the compiled kernel, each running whole blocks of spectra
        (default: :func:`nanohet.parallel.available_cpus`). The images do
        not depend on it.
    progress : callable, optional
        Called as ``progress(done_spectra, total_spectra)`` after each chunk.

    Returns
    -------
    MSIImages
    """
    if reduce not in ("sum", "max"):
        raise ValueError(f"reduce must be 'sum' or 'max', got {reduce!r}")
    if engine not in ("auto", "numba", "numpy"):
        raise ValueError(f"engine must be auto, numba or numpy, got {engine!r}")
    pixel_size = resolve_pixel_size(index.pixel_size, pixel_size_um, index.imzml_path)
    if mz_range is None:
        mz_range = _mz_extent(index, [t.mz for t in targets])
    top_targets = []
    if top_n > 0:
        top_targets = _top_peaks(index, targets, top_n, mean_spectrum_bin_mz, mz_range, pixel_size, top_n_ppm)
        targets = list(targets) + top_targets
    p = _pass_state(index, targets, reduce, lock_mass, median, mz_range, mean_spectrum_bin_mz)
    if engine == "auto" and int(index.int_lengths.sum()) <= AUTO_NUMPY_PEAKS:
        engine = "numpy"
    kern = _kernels(engine, index.continuous and lock_mass is not None)
    _stream(p, kern, chunk_peaks, progress, available_cpus() if threads is None else max(1, int(threads)))
    return _result(p, targets, top_targets, pixel_size, mean_spectrum_bin_mz)


def _pass_state(index, targets, reduce, lock_mass, median, mz_range, bin_mz) -> PassState:
    """A pass over ``index``'s spectra: the grid, the image stack (NaN outside the acquired pixels) and the
    per-target windows."""
    rows, cols, shape, offset = grid_positions(index)
    # every acquired pixel of every image is written by the pass; only the others are set here (NaN).
    # float32 like the OME-TIFF it becomes (window sums are accumulated in float64 first): half the
    # memory and memory traffic of float64
    stack_img = np.empty((len(targets),) + shape, dtype=np.float32)
    not_acquired = np.ones(shape, dtype=bool)
    not_acquired[rows, cols] = False
    stack_img[:, not_acquired] = np.nan
    inv_width = 1.0 / bin_mz
    return PassState(index=index, lo=np.array([t.window[0] for t in targets]),
                     hi=np.array([t.window[1] for t in targets]), reduce_max=reduce == "max", lock_mass=lock_mass,
                     median=median, mz_range=mz_range, inv_width=inv_width,
                     n_bins=int(np.ceil((mz_range[1] - mz_range[0]) * inv_width)), rows=rows, cols=cols,
                     shape=shape, offset=offset, stack_img=stack_img)


def _result(p: PassState, targets, top_targets, pixel_size, bin_mz) -> MSIImages:
    """The pass's accumulators as images on the grid (NaN where not acquired)."""
    index, rows, cols, shape = p.index, p.rows, p.cols, p.shape
    x0, y0 = p.offset

    def to_image(v):
        img = np.full(shape, np.nan)
        img[rows, cols] = v
        return img

    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt(p.sumsq / np.maximum(index.int_lengths, 1))
    acquired = np.zeros(shape, dtype=bool)
    acquired[rows, cols] = True
    centres = p.mz_range[0] + (np.arange(p.n_bins) + 0.5) * bin_mz
    return MSIImages(
        lock_mass_ppm=to_image(p.lock_ppm) if p.lock_mass is not None else None,
        top_peaks=[t.name for t in top_targets],
        images={t.name: p.stack_img[k] for k, t in enumerate(targets)},
        tic=to_image(p.tic), rms=to_image(rms), median=to_image(p.medians), acquired=acquired,
        pixel_size=pixel_size,
        origin=(index.stage_origin[0] + x0 * pixel_size[0], index.stage_origin[1] + y0 * pixel_size[1]),
        mean_spectrum=(centres, p.spectrum_sum / index.n_spectra),
    )


# Below this many peaks the vectorised path (about 13 million peaks/s) finishes before a new process has loaded
# the cached kernel (about 0.5 s; compiling it, on a first run, about 1-2 s).
AUTO_NUMPY_PEAKS = 4_000_000


def _kernels(engine: str, unsupported: bool):
    """The compiled kernels module, or None for the numpy path (asked for, not installed, or a case the
    kernel does not cover: continuous data with a lock mass)."""
    if engine == "numpy" or unsupported:
        return None
    try:
        from . import kernels
    except ImportError:
        if engine == "numba":
            raise
        return None
    return kernels


def _chunks(index: ImzMLIndex, chunk_peaks: int):
    """Parallel blocks (see :func:`block_starts`) and the ``(start, stop)`` spectra of each chunk of
    ``BLOCKS_PER_CHUNK`` blocks."""
    n = index.n_spectra
    blocks = block_starts(index.int_lengths, max(1, chunk_peaks // BLOCKS_PER_CHUNK))
    edges = np.r_[blocks[:-1:BLOCKS_PER_CHUNK], n] if n else np.zeros(1, np.int64)
    return blocks, [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _stream(p: PassState, kern, chunk_peaks: int, progress, threads: int = 1) -> None:
    """Read every chunk once: the kernel path maps the next chunk in a helper thread while the kernel
    works on this one (reading it from disk if needed); the numpy path gathers each chunk itself."""
    index = p.index
    blocks, bounds = _chunks(index, chunk_peaks)
    mm = np.memmap(index.ibd_path, dtype=np.uint8, mode="r")
    fh = open(index.ibd_path, "rb", buffering=0)
    prefetch = ThreadPoolExecutor(max_workers=1) if kern is not None else None
    workers = ThreadPoolExecutor(max_workers=threads) if kern is not None and threads > 1 else None
    try:
        if index.continuous:
            p.read_axis(mm)
        if kern is None:
            values = np.zeros((max((b - a for a, b in bounds), default=0), p.lo.size))
        else:
            kargs = _kernel_args(p, kern)
            kargs["workers"] = workers
            pending = prefetch.submit(chunk_bytes, fh, mm, index, *bounds[0]) if bounds else None
        for c_i, (start, stop) in enumerate(bounds):
            if kern is None:
                numpy_chunk(p, mm, start, stop, values)
            else:
                data = pending.result()
                pending = (prefetch.submit(chunk_bytes, fh, mm, index, *bounds[c_i + 1])
                           if c_i + 1 < len(bounds) else None)
                local_blocks = blocks[c_i * BLOCKS_PER_CHUNK: (c_i + 1) * BLOCKS_PER_CHUNK + 1] - start
                (_kernel_continuous if index.continuous else _kernel_processed)(
                    p, kern, kargs, data, start, stop, local_blocks)
                data = None  # release this chunk's mappings
            if progress is not None:
                progress(stop, index.n_spectra)
    finally:
        if prefetch is not None:
            prefetch.shutdown(wait=True)
        if workers is not None:
            workers.shutdown(wait=True)
        fh.close()
        del mm


def _kernel_args(p: PassState, kern) -> dict:
    """Per-pass inputs of the compiled kernels: windows sorted by lower bound, lookup tables, scratch."""
    order = np.argsort(p.lo, kind="stable")
    k_lo, k_hi = p.lo[order], p.hi[order]
    return {
        "order": order.astype(np.int64), "k_lo": k_lo, "k_hi": k_hi,
        "k_maxhi": np.maximum.accumulate(k_hi) if k_hi.size else k_hi,
        "lut": kern.window_lut(k_lo),
        "near_window": kern.window_bins(k_lo, k_hi, p.mz_range[0], p.inv_width, p.n_bins),
        # per-block mean-spectrum scratch, reused by every chunk
        "scratch": (np.zeros((BLOCKS_PER_CHUNK, p.axis.size)) if p.index.continuous
                    else np.zeros((BLOCKS_PER_CHUNK, max(p.n_bins, 1)), dtype=np.float32)),
    }


def _each_block(workers, n_blocks: int, run_block) -> None:
    """``run_block(b)`` for every block of a chunk: in the worker threads (the kernels release the GIL), or here
    with one thread. Blocks write disjoint memory, so the order they run in does not matter."""
    if workers is None:
        for b in range(n_blocks):
            run_block(b)
    else:
        for done in [workers.submit(run_block, b) for b in range(n_blocks)]:
            done.result()  # re-raises a worker's exception


def _kernel_continuous(p: PassState, kern, kargs: dict, data, start: int, stop: int, local_blocks) -> None:
    index = p.index
    _, _, src, base = data  # the intensities' bytes
    lens = index.int_lengths[start:stop]
    m, width = stop - start, p.axis.size
    flat, fstarts = typed_view(src, index.int_offsets[start:stop] - base, lens, index.int_dtype, kern)
    if np.all(np.diff(fstarts) == width) and fstarts[0] + m * width <= flat.size:
        block = flat[fstarts[0]: fstarts[0] + m * width].reshape(m, width)
    else:
        block = gather(src, index.int_offsets[start:stop] - base, lens, index.int_dtype, kern).reshape(m, width)
    cols_lo, cols_hi = p.cols_lo.astype(np.int64), p.cols_hi.astype(np.int64)
    tic, sumsq, pix, scratch = p.tic[start:stop], p.sumsq[start:stop], p.pixel_of[start:stop], kargs["scratch"]

    def run_block(b):
        kern.process_continuous(block, local_blocks[b:b + 2], cols_lo, cols_hi, p.reduce_max, tic, sumsq,
                                scratch[b:b + 1], p.stack_flat, pix)

    n_blocks = local_blocks.size - 1
    _each_block(kargs["workers"], n_blocks, run_block)
    for b in range(n_blocks):  # in block order: the same sums with any number of threads
        p.spectrum_sum += np.bincount(p.bins_axis[p.in_range], weights=scratch[b, :width][p.in_range],
                                      minlength=p.n_bins)
    if p.median:
        p.medians[start:stop] = np.median(block, axis=1)


def _kernel_processed(p: PassState, kern, kargs: dict, data, start: int, stop: int, local_blocks) -> None:
    index = p.index
    mz_src, mz_base, src, base = data
    lens = index.int_lengths[start:stop]
    m = stop - start
    mz_v, mz_row, mz_col = residue_views(mz_src, index.mz_offsets[start:stop] - mz_base, index.mz_dtype)
    it_v, it_row, it_col = residue_views(src, index.int_offsets[start:stop] - base, index.int_dtype)
    lerr = np.full(m, np.nan)
    lens64, tic, sumsq, pix, scratch = (lens.astype(np.int64), p.tic[start:stop], p.sumsq[start:stop],
                                        p.pixel_of[start:stop], kargs["scratch"])
    if p.lock_mass is not None:
        kern.lock_errors(mz_v, it_v, mz_row, mz_col, it_row, it_col, lens64, p.lock_mass.mz, *p.lock_mass.window,
                         lerr)

    def run_block(b):
        kern.process_peaks(mz_v, it_v, mz_row, mz_col, it_row, it_col, lens64, local_blocks[b:b + 2],
                           kargs["k_lo"], kargs["k_hi"], kargs["k_maxhi"], kargs["order"], p.reduce_max, lerr,
                           p.mz_range[0], p.inv_width, p.n_bins, *kargs["lut"], kargs["near_window"],
                           tic, sumsq, scratch[b:b + 1], p.stack_flat, pix)

    n_blocks = local_blocks.size - 1
    _each_block(kargs["workers"], n_blocks, run_block)
    for b in range(n_blocks):  # in block order, in float64: the same sums with any number of threads
        np.add(p.spectrum_sum, scratch[b, :p.n_bins], out=p.spectrum_sum)
    p.lock_ppm[start:stop] = lerr * 1e6
    if p.median:
        spec = np.repeat(np.arange(m), lens)
        flat = gather(src, index.int_offsets[start:stop] - base, lens, index.int_dtype, kern)
        p.medians[start:stop] = segment_median(flat.astype(np.float64), spec, lens, m)


def _mz_extent(index: ImzMLIndex, target_mzs) -> tuple[float, float]:
    # 100 evenly spaced spectra: each is a random read on a cold disk, and ±1 % margins absorb the rest
    stride = max(1, index.n_spectra // 100)
    sel = slice(None, None, stride) if not index.continuous else slice(0, 1)
    mm = np.memmap(index.ibd_path, dtype=np.uint8, mode="r")
    try:
        mz = gather(mm, index.mz_offsets[sel], index.mz_lengths[sel], index.mz_dtype)
    finally:
        del mm
    values = np.concatenate([mz[np.isfinite(mz) & (mz > 0)], np.asarray(target_mzs, float)])
    if values.size == 0:
        return (100.0, 1000.0)
    return (0.99 * float(values.min()), 1.01 * float(values.max()))


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
