"""Compiled (numba) kernels for the streaming MSI pass.

One loop over every peak of a chunk of spectra does what the numpy path in
:mod:`nanohet.msi` does in many array passes: read the peaks in place from the
mapped .ibd bytes, apply the lock-mass correction, match ppm windows (sum or
max), accumulate TIC, sum of squares and the binned mean spectrum. The numpy
path stays as the reference implementation; tests check both give the same
images.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def lock_errors(mz, it, mz_row, mz_col, it_row, it_col, lengths, lock_mz, lock_lo, lock_hi, lock_err):
    """Relative m/z error of each spectrum's lock-mass peak: the most intense peak in ``[lock_lo, lock_hi]``
    (views as in :func:`process_peaks`); NaN where the window holds no peak. A kernel of its own, compiled only
    when a lock mass is configured."""
    for i in range(lengths.size):
        mz_i, it_i = mz[mz_row[i]], it[it_row[i]]
        mz_start, it_start = np.uint64(mz_col[i]), np.uint64(it_col[i])
        best = -1.0
        best_mz = 0.0
        for j in range(np.uint64(lengths[i])):
            m = mz_i[mz_start + j]
            v = it_i[it_start + j]
            if lock_lo <= m <= lock_hi and v > best:
                best = v
                best_mz = m
        lock_err[i] = (best_mz - lock_mz) / lock_mz if best >= 0 else np.nan


def window_lut(lo, quantum_mz: float = 0.01):
    """Lookup table: for each m/z quantum, the number of windows whose lower bound lies below it.

    ``lut[q]`` = count of ``lo <= mz0 + q * quantum`` so locating a peak among
    the windows is one table read plus a short scan, whatever the order of a
    spectrum's m/z values (only peaks near a window get this far).
    Returns ``(mz0, 1 / quantum, lut)``.
    """
    if lo.size == 0:
        return 0.0, 1.0 / quantum_mz, np.zeros(1, np.int32)
    mz0 = float(lo[0])
    n = int((float(lo[-1]) - mz0) / quantum_mz) + 2
    grid = mz0 + np.arange(n) * quantum_mz
    return mz0, 1.0 / quantum_mz, np.searchsorted(lo, grid, side="right").astype(np.int32)


def window_bins(lo, hi, bin0: float, bin_step: float, n_bins: int):
    """Flag (uint8, one per mean-spectrum bin) of the bins that a window may touch, one bin of margin.

    A peak whose bin is not flagged lies in no window, so the kernel skips
    the window search for it with one byte read (most peaks of a spectrum).
    """
    flag = np.zeros(max(n_bins, 1), np.uint8)
    a = np.clip(np.floor((np.asarray(lo) - bin0) * bin_step).astype(np.int64) - 1, 0, n_bins)
    b = np.clip(np.floor((np.asarray(hi) - bin0) * bin_step).astype(np.int64) + 2, 0, n_bins)
    for i, j in zip(a, b):
        flag[i:j] = 1
    return flag


@njit(cache=True, nogil=True, inline="always")  # inlined: one function to compile, not two (first run)
def _one_spectrum(mz, it, mz_start, it_start, n, lo, hi, maxhi, target_of, reduce_max,
                  lut0, lut_inv, lut, flag, scale, bin0, bin_step, n_bins, row, partial):
    # mz, it: 1-D rows of the residue views; every index here is unsigned (uint64), which spares numba's
    # negative-index wraparound on each access: about twice as fast per peak (measured)
    k = lo.size
    t = 0.0
    q = 0.0
    for j in range(n):
        v = np.float64(it[it_start + j])
        m = mz[mz_start + j] * scale
        t += v
        q += v * v
        x = (m - bin0) * bin_step
        if x >= 0.0 and x < n_bins:  # False for NaN
            b = np.uint64(x)
            partial[b] += v
            if flag[b] == 0:
                continue  # no window near this peak (the usual case)
        if k == 0:
            continue
        # a = number of windows with lo <= m: table estimate, then exact by a short scan
        qi = int((m - lut0) * lut_inv) if m >= lut0 else -1
        a = 0 if qi < 0 else (k if qi >= lut.size else lut[qi])
        while a < k and lo[a] <= m:
            a += 1
        while a > 0 and lo[a - 1] > m:
            a -= 1
        p = a - 1
        while p >= 0 and maxhi[p] >= m:
            if hi[p] >= m:
                col = target_of[p]
                if reduce_max:
                    if v > row[col]:
                        row[col] = v
                else:
                    row[col] += v
            p -= 1
    return t, q


@njit(cache=True, nogil=True)
def process_peaks(mz, it, mz_row, mz_col, it_row, it_col, lengths, blocks, lo, hi, maxhi, target_of, reduce_max,
                  lock_err, bin0, bin_step, n_bins, lut0, lut_inv, lut, flag, tic, sumsq, partial, out, pix):
    """Process the peaks of the spectra ``blocks[0]:blocks[-1]``, one block after the other.

    ``mz`` and ``it`` are 2-D views of the .ibd bytes, one row per byte
    residue modulo the item size (see ``nanohet.msi._residue_views``):
    spectrum ``i`` has ``lengths[i]`` peaks at ``mz[mz_row[i], mz_col[i]:]``
    and ``it[it_row[i], it_col[i]:]``, so no spectrum is copied, whatever
    the alignment of its offset.

    ``lock_err`` is each spectrum's relative lock-mass error (from
    :func:`lock_errors`; NaN: none), divided out of its m/z values.
    Mean-spectrum bin of a peak: ``floor((mz - bin0) * bin_step)`` (``bin_step`` is
    the inverse bin width), exactly as the numpy path computes it.

    ``lo``/``hi`` are window bounds sorted by ``lo``; ``maxhi`` their running
    maximum (so every window containing a peak is found, overlaps included);
    ``target_of`` maps sorted position to the target's row in ``out``;
    ``flag`` (from :func:`window_bins`) marks the mean-spectrum bins near a
    window: peaks in other bins skip the search. Each spectrum's window sums
    (accumulated in float64) are written to ``out[:, pix[i]]`` (the image
    stack, flattened per target), so no serial scatter follows.
    Block ``b`` is spectra ``blocks[b]:blocks[b + 1]`` (from
    ``nanohet.msi.extract.block_starts``); it sums its part of the mean
    spectrum in float32 (small enough to stay in the core's cache) into
    ``partial[b]`` (scratch reused across chunks, so no chunk allocates and
    page-faults a fresh one), which the caller adds in float64 in block
    order. No two blocks write the same memory, so the caller runs blocks in
    threads (the function releases the GIL) and the result does not depend
    on the number of threads. The function is serial on purpose: numba
    compiles it in about half the time of a ``prange`` loop, and a first run
    pays that compilation.
    """
    n_blocks = blocks.size - 1
    for blk in range(n_blocks):
        partial[blk, :n_bins] = 0.0
        row = np.empty(out.shape[0])  # this spectrum's window sums, in float64
        for i in range(blocks[blk], blocks[blk + 1]):
            n = np.uint64(lengths[i])
            mz_i = mz[mz_row[i]]
            it_i = it[it_row[i]]
            mz_start = np.uint64(mz_col[i])
            it_start = np.uint64(it_col[i])
            row[:] = 0.0
            e = lock_err[i]
            scale = 1.0 if math.isnan(e) else 1.0 / (1.0 + e)
            t, q = _one_spectrum(mz_i, it_i, mz_start, it_start, n, lo, hi, maxhi, target_of, reduce_max,
                                 lut0, lut_inv, lut, flag, scale, bin0, bin_step, n_bins, row, partial[blk])
            tic[i] = t
            sumsq[i] = q
            px = np.uint64(pix[i])
            for c in range(row.size):
                out[c, px] = row[c]


@njit(cache=True, nogil=True)
def copy_segments(src, first, lengths, dest, dest_starts):
    """dest[dest_starts[i] : +lengths[i]] = src[first[i] : +lengths[i]] for every i."""
    for i in range(first.size):
        a = first[i]
        d = dest_starts[i]
        for j in range(lengths[i]):
            dest[d + j] = src[a + j]


@njit(cache=True, nogil=True)
def process_continuous(block, blocks, cols_lo, cols_hi, reduce_max, tic, sumsq, partial, out, pix):
    """Continuous spectra: ``block`` is (spectra, m/z points) on one shared axis.

    Target ``k`` covers columns ``cols_lo[k]:cols_hi[k]``. Each block of
    spectra (``blocks``, as in :func:`process_peaks`) sums its columns into a
    row of ``partial`` (scratch, at least ``(len(blocks) - 1, columns)``,
    float64), which the caller adds to the mean-spectrum bins in block order.
    Results go to ``out[:, pix[i]]`` as in :func:`process_peaks`.
    """
    width = block.shape[1]
    k = cols_lo.size
    n_blocks = blocks.size - 1
    for blk in range(n_blocks):
        acc_cols = partial[blk]
        acc_cols[:width] = 0.0
        for i in range(blocks[blk], blocks[blk + 1]):
            spectrum = block[i]
            t = 0.0
            q = 0.0
            for j in range(np.uint64(width)):  # unsigned: no wraparound check per access
                v = np.float64(spectrum[j])
                t += v
                q += v * v
                acc_cols[j] += v
            tic[i] = t
            sumsq[i] = q
            px = np.uint64(pix[i])
            for c in range(k):
                acc = 0.0
                for j in range(np.uint64(cols_lo[c]), np.uint64(cols_hi[c])):
                    v = spectrum[j]
                    if reduce_max:
                        if v > acc:
                            acc = v
                    else:
                        acc += v
                out[c, px] = acc
