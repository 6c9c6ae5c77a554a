"""Compiled (numba) kernels for the streaming MSI pass.

One loop over every peak of a chunk of spectra does what the numpy path in
:mod:`nanohet.msi` does in many array passes: copy the peaks out of the
memory-mapped .ibd, apply the lock-mass correction, match ppm windows (sum or
max), accumulate TIC, sum of squares and the binned mean spectrum. The numpy
path stays as the reference implementation; tests check both give the same
images.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def _find_lock_error(mz, it, s_mz, s_it, length, lock_mz, lock_lo, lock_hi):
    best = -1.0
    best_mz = 0.0
    for j in range(length):
        m = mz[s_mz + j]
        if lock_lo <= m <= lock_hi and it[s_it + j] > best:
            best = it[s_it + j]
            best_mz = m
    if best < 0:
        return np.nan
    return (best_mz - lock_mz) / lock_mz


BLOCK = 1024  # spectra per parallel work item; fixed so results do not depend on the thread count


def window_lut(lo, quantum_mz: float = 0.01):
    """Lookup table: for each m/z quantum, the number of windows whose lower bound lies below it.

    ``lut[q]`` = count of ``lo <= mz0 + q * quantum`` so the binary search of
    every peak becomes one table read plus a short forward scan.
    """
    if lo.size == 0:
        return 0.0, quantum_mz, np.zeros(1, np.int32)
    mz0 = float(lo[0])
    n = int((float(lo[-1]) - mz0) / quantum_mz) + 2
    grid = mz0 + np.arange(n) * quantum_mz
    return mz0, quantum_mz, np.searchsorted(lo, grid, side="right").astype(np.int32)


@njit(cache=True, nogil=True)
def _one_spectrum(mz, it, s_mz, s_it, n, lo, hi, maxhi, target_of, reduce_max, lut0, lutq, lut, scale,
                  bin0, bin_step, n_bins, row, partial):
    k = lo.size
    t = 0.0
    q = 0.0
    for j in range(n):
        v = it[s_it + j]
        m = mz[s_mz + j] * scale
        t += v
        q += v * v
        if m > 0.0 and n_bins > 0:
            b = int(math.floor((m - bin0) * bin_step))
            if 0 <= b < n_bins:
                partial[b] += v
        if k == 0:
            continue
        # a = number of windows with lo <= m: table estimate, then exact by a short scan
        qi = int((m - lut0) / lutq)
        if qi < 0:
            a = 0
        elif qi >= lut.size:
            a = k
        else:
            a = lut[qi]
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


@njit(cache=True, parallel=True)
def process_peaks(mz, it, mz_starts, it_starts, lengths, lo, hi, maxhi, target_of, reduce_max,
                  lock_mz, lock_lo, lock_hi, use_lock, bin0, bin_step, n_bins, lut0, lutq, lut,
                  values, tic, sumsq, lock_err, spectrum_sum):
    """Process the peaks of ``len(lengths)`` spectra.

    Spectrum ``i`` has ``lengths[i]`` peaks at ``mz[mz_starts[i]:]`` and
    ``it[it_starts[i]:]`` (typed views of the .ibd bytes, or gathered copies).

    Mean-spectrum bin of a peak: ``floor((mz - bin0) * bin_step)`` (``bin_step`` is
    the inverse bin width), exactly as the numpy path computes it.

    ``lo``/``hi`` are window bounds sorted by ``lo``; ``maxhi`` their running
    maximum (so every window containing a peak is found, overlaps included);
    ``target_of`` maps sorted position to the target's column in ``values``.
    Spectra are processed in parallel in fixed blocks; each block has its own
    partial mean spectrum, summed in block order, so the result does not
    depend on the number of threads.
    """
    m = lengths.size
    n_blocks = (m + BLOCK - 1) // BLOCK
    partial = np.zeros((n_blocks, max(n_bins, 1)))
    for blk in prange(n_blocks):
        for i in range(blk * BLOCK, min(m, (blk + 1) * BLOCK)):
            s_mz = mz_starts[i]
            s_it = it_starts[i]
            n = lengths[i]
            scale = 1.0
            if use_lock:
                e = _find_lock_error(mz, it, s_mz, s_it, n, lock_mz, lock_lo, lock_hi)
                lock_err[i] = e
                if not math.isnan(e):
                    scale = 1.0 / (1.0 + e)
            t, q = _one_spectrum(mz, it, s_mz, s_it, n, lo, hi, maxhi, target_of, reduce_max, lut0, lutq, lut, scale,
                                 bin0, bin_step, n_bins, values[i], partial[blk])
            tic[i] = t
            sumsq[i] = q
    for blk in range(n_blocks):
        for b in range(n_bins):
            spectrum_sum[b] += partial[blk, b]


@njit(cache=True, nogil=True)
def copy_segments(src, first, lengths, dest, dest_starts):
    """dest[dest_starts[i] : +lengths[i]] = src[first[i] : +lengths[i]] for every i."""
    for i in range(first.size):
        a = first[i]
        d = dest_starts[i]
        for j in range(lengths[i]):
            dest[d + j] = src[a + j]


@njit(cache=True, parallel=True)
def process_continuous(block, cols_lo, cols_hi, reduce_max, col_bin, n_bins, values, tic, sumsq, spectrum_sum):
    """Continuous spectra: ``block`` is (spectra, m/z points) on one shared axis.

    Target ``k`` covers columns ``cols_lo[k]:cols_hi[k]``; ``col_bin`` is the
    mean-spectrum bin of each column (-1 outside the range). Fixed blocks of
    spectra with partial spectra summed in order keep results independent
    of the thread count.
    """
    m, width = block.shape
    k = cols_lo.size
    n_blocks = (m + BLOCK - 1) // BLOCK
    partial = np.zeros((n_blocks, max(n_bins, 1)))
    for blk in prange(n_blocks):
        for i in range(blk * BLOCK, min(m, (blk + 1) * BLOCK)):
            t = 0.0
            q = 0.0
            for j in range(width):
                v = block[i, j]
                t += v
                q += v * v
                b = col_bin[j]
                if b >= 0:
                    partial[blk, b] += v
            tic[i] = t
            sumsq[i] = q
            for c in range(k):
                acc = 0.0
                for j in range(cols_lo[c], cols_hi[c]):
                    v = block[i, j]
                    if reduce_max:
                        if v > acc:
                            acc = v
                    else:
                        acc += v
                values[i, c] = acc
    for blk in range(n_blocks):
        for b in range(n_bins):
            spectrum_sum[b] += partial[blk, b]
