"""The vectorised numpy path of the streaming pass: the reference the compiled kernel is checked against.

Same inputs and accumulators as :mod:`nanohet.msi.kernels` (see :class:`nanohet.msi.extract.PassState`),
computed with whole-array numpy operations per chunk. Slower, but short and easy to check; the tests
require both paths to give identical images.
"""

from __future__ import annotations

import numpy as np

from .ibd import gather


def numpy_chunk(p, mm: np.ndarray, start: int, stop: int, values: np.ndarray) -> None:
    """Process spectra ``start:stop`` of the pass ``p`` (a :class:`~nanohet.msi.extract.PassState`).

    ``values`` is scratch of shape (>= stop - start, targets); the chunk's window values are written
    into the image stack.
    """
    index = p.index
    lens = index.int_lengths[start:stop]
    m = stop - start
    cv = values[:m]
    cv[:] = 0.0
    ints = gather(mm, index.int_offsets[start:stop], lens, index.int_dtype).astype(np.float64)
    spec = np.repeat(np.arange(m), lens)
    p.tic[start:stop] = np.bincount(spec, weights=ints, minlength=m)
    p.sumsq[start:stop] = np.bincount(spec, weights=ints * ints, minlength=m)
    if index.continuous:
        _continuous(p, ints.reshape(m, p.axis.size), start, stop, cv)
    else:
        _processed(p, mm, ints, spec, lens, start, stop, cv)
    p.stack_img[:, p.rows[start:stop], p.cols[start:stop]] = cv.T


def _continuous(p, block: np.ndarray, start: int, stop: int, cv: np.ndarray) -> None:
    k_targets = p.lo.size
    if p.lock_mass is None:
        for k in range(k_targets):
            seg = block[:, p.cols_lo[k]:p.cols_hi[k]]
            if seg.shape[1]:
                cv[:, k] = seg.sum(axis=1) if not p.reduce_max else seg.max(axis=1)
    else:
        err = _lock_error_continuous(p.axis, block, p.lock_mass)
        p.lock_ppm[start:stop] = err * 1e6
        shift = 1 + np.nan_to_num(err)[:, None]
        rlo = np.searchsorted(p.axis, p.lo[None, :] * shift, side="left")
        rhi = np.searchsorted(p.axis, p.hi[None, :] * shift, side="right")
        for k in range(k_targets):
            a, b = rlo[:, k].min(), rhi[:, k].max()
            if b <= a:
                continue
            cidx = np.arange(a, b)
            inside = (cidx >= rlo[:, k:k + 1]) & (cidx < rhi[:, k:k + 1])
            masked = np.where(inside, block[:, a:b], 0)
            cv[:, k] = masked.sum(axis=1) if not p.reduce_max else masked.max(axis=1)
    if p.median:
        p.medians[start:stop] = np.median(block, axis=1)
    p.spectrum_sum += np.bincount(p.bins_axis[p.in_range], weights=block[:, p.in_range].sum(axis=0),
                                  minlength=p.n_bins)


def _processed(p, mm, ints, spec, lens, start: int, stop: int, cv: np.ndarray) -> None:
    index = p.index
    m = stop - start
    k_targets = p.lo.size
    mz = gather(mm, index.mz_offsets[start:stop], lens, index.mz_dtype).astype(np.float64)
    if p.lock_mass is not None:
        err = _lock_error_processed(mz, ints, spec, m, p.lock_mass)
        p.lock_ppm[start:stop] = err * 1e6
        mz = mz / (1 + np.nan_to_num(err)[spec])
    local = np.zeros(m * k_targets)
    for layer in window_layers(p.lo, p.hi):
        layer_lo, layer_hi = p.lo[layer], p.hi[layer]
        pos = np.searchsorted(layer_lo, mz, side="right") - 1
        ok = pos >= 0
        ok[ok] &= mz[ok] <= layer_hi[pos[ok]]
        key = spec[ok] * k_targets + np.asarray(layer)[pos[ok]]
        if not p.reduce_max:
            local += np.bincount(key, weights=ints[ok], minlength=m * k_targets)
        else:
            np.maximum.at(local, key, ints[ok])
    cv[:] = local.reshape(m, k_targets)
    if p.median:
        p.medians[start:stop] = segment_median(ints, spec, lens, m)
    x = (mz - p.mz_range[0]) * p.inv_width
    sel = (x >= 0) & (x < p.n_bins)  # NaN m/z: in no bin
    p.spectrum_sum += np.bincount(x[sel].astype(np.int64), weights=ints[sel], minlength=p.n_bins)


def window_layers(lo: np.ndarray, hi: np.ndarray) -> list[list[int]]:
    """Split target windows ``[lo, hi]`` into groups whose windows do not overlap."""
    order = sorted(range(len(lo)), key=lambda k: lo[k])
    layers: list[list[int]] = []
    for k in order:
        for layer in layers:
            if hi[layer[-1]] < lo[k]:
                layer.append(k)
                break
        else:
            layers.append([k])
    return layers


def _lock_error_processed(mz, ints, spec, m, lock: "IonTarget") -> np.ndarray:
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


def _lock_error_continuous(axis, block, lock: "IonTarget") -> np.ndarray:
    lo, hi = lock.window
    a, b = np.searchsorted(axis, lo, "left"), np.searchsorted(axis, hi, "right")
    err = np.full(block.shape[0], np.nan)
    if b > a:
        seg = block[:, a:b]
        found = seg.max(axis=1) > 0
        err[found] = (axis[a + seg[found].argmax(axis=1)] - lock.mz) / lock.mz
    return err


def segment_median(values: np.ndarray, seg: np.ndarray, lengths: np.ndarray, m: int) -> np.ndarray:
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
