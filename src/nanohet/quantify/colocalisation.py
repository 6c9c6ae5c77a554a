"""Colocalisation of two maps inside a region: correlation, Manders' coefficients with Costes' automatic
thresholds, and a significance test that respects spatial autocorrelation.

Definitions and sources:

* Pearson's r over the region's pixels (Manders, Verbeek & Aten, J Microsc 1993;169:375) and Spearman's rank
  correlation (robust to the non-linear response of the two signals);
* Costes' automatic thresholds (Costes et al., Biophys J 2004;86:3993): the orthogonal (total least squares)
  regression line of b on a; thresholds move down the line, from a's maximum, to where the Pearson r of the
  pixels below either threshold first falls to 0 or below; the thresholds are the lowest ones at which it is
  still positive (found exactly, pixel by pixel, where Fiji's Coloc 2 bisects by default);
* Manders' M1 and M2 at those thresholds (Manders, Verbeek & Aten 1993; Dunn et al., Am J Physiol Cell
  Physiol 2011;300:C723): ``M1 = sum of a over pixels above both thresholds / sum of a over pixels
  above a's threshold``, M2 likewise for b;
* significance by toroidal shifts (Fay et al., Exp Cell Res 1997;231:27; the randomisation of Costes et al. 2004 by blocks, here
  by whole-image cyclic shifts of b larger than a minimum distance): pixel-level p-values of r assume
  independent pixels and are meaningless on autocorrelated maps, a shift keeps each map's own spatial
  structure and breaks only their alignment. ``p = (1 + #{r_shift >= r}) / (1 + n_shifts)``.
"""

from __future__ import annotations

import numpy as np
from scipy import fft

from ..errors import InputError
from ..parallel import available_cpus


def _pair(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.shape != region.shape:
        raise ValueError(f"maps {a.shape}, {b.shape} and region {region.shape} differ in shape")
    inside = region & np.isfinite(a) & np.isfinite(b)
    if inside.sum() < 3:
        raise InputError(f"the region holds {int(inside.sum())} pixels where both maps are finite; "
                         "colocalisation needs 3 or more")
    return a[inside], b[inside]


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    dx, dy = x - x.mean(), y - y.mean()
    denom = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / denom) if denom > 0 else float("nan")


def orthogonal_regression(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of the total-least-squares line of y on x (the major axis of the joint scatter)."""
    sxx, syy = np.var(x), np.var(y)
    sxy = np.mean((x - x.mean()) * (y - y.mean()))
    if sxy == 0:
        raise InputError("the two maps are uncorrelated; Costes' regression line is undefined")
    slope = (syy - sxx + np.sqrt((syy - sxx) ** 2 + 4 * sxy ** 2)) / (2 * sxy)
    return float(slope), float(y.mean() - slope * x.mean())


def costes_thresholds(x: np.ndarray, y: np.ndarray, n_bins: int = 4096) -> tuple[float, float]:
    """Costes' thresholds ``(t_x, t_y)`` on the regression line (see the module docstring).

    The thresholds step down the line from x's maximum; the pixels below them at ``t`` are those whose entry
    point ``min(x, (y - intercept) / slope)`` is below ``t``. The sums behind Pearson's r of those pixels are
    accumulated over ``n_bins`` bins of entry points (so r is known at every bin edge in one pass), and the bin
    where r first falls to 0 or below is resolved pixel by pixel: the result is the lowest threshold above that
    crossing, exactly as stepping through every pixel's entry point would find it.

    Raises
    ------
    InputError
        When the maps are not positively correlated (no line along which to threshold).
    """
    slope, intercept = orthogonal_regression(x, y)
    if slope <= 0:
        raise InputError("the two maps are not positively correlated; Costes' thresholds are undefined")
    entry = np.minimum(x, (y - intercept) / slope)
    a, b = x - x.mean(), y - y.mean()  # centred: no cancellation in the sums of squares
    lo, hi = float(x.min()), float(x.max())
    edges = np.linspace(lo, hi, int(n_bins) + 1)
    bins = np.searchsorted(edges, entry, side="right")  # entry < edges[j]  <=>  bins <= j

    def terms(a, b):  # the six sums behind r, one pixel array at a time (each is as large as the region)
        yield None  # the count
        yield a
        yield b
        yield a * a
        yield b * b
        yield a * b

    binned = np.array([np.bincount(bins, weights=w, minlength=edges.size + 1) for w in terms(a, b)])
    before = np.cumsum(binned, axis=1)  # before[:, j]: the sums over the pixels with entry < edges[j]

    def pearson(sums):
        n, sa, sb, saa, sbb, sab = sums
        with np.errstate(invalid="ignore", divide="ignore"):
            var = (saa - sa * sa / n) * (sbb - sb * sb / n)
            return np.where((n >= 3) & (var > 0), (sab - sa * sb / n) / np.sqrt(np.where(var > 0, var, 1)), np.nan)

    r_edges = pearson(before[:, : edges.size])
    crossed = np.flatnonzero(np.isfinite(r_edges) & (r_edges <= 0))
    if crossed.size == 0:  # r stays positive (or undefined) all the way down
        return lo, slope * lo + intercept
    j = int(crossed[-1])  # the highest edge at which r <= 0; r > 0 (or undefined) at every edge above it
    if j == edges.size - 1:  # r <= 0 already at x's maximum
        return hi, slope * hi + intercept
    inside = np.flatnonzero(bins == j + 1)  # the pixels entering between edges[j] and edges[j + 1]
    order = inside[np.argsort(entry[inside], kind="stable")]
    a, b = a[order], b[order]
    steps = before[:, j][:, None] + np.cumsum(
        np.array([np.ones(order.size) if w is None else w for w in terms(a, b)]), axis=1)
    # r of the sets below t as t steps down through the bin: S_m holds the first m of its pixels, m = 0 .. K - 1
    r_sets = np.concatenate([[r_edges[j]], pearson(steps)[:-1]])
    m = int(np.flatnonzero(np.isfinite(r_sets) & (r_sets <= 0))[-1])  # the first set met with r <= 0
    threshold = float(np.nextafter(entry[order[m]], np.inf))  # the lowest t whose set, S_m+1, still has r > 0
    return threshold, slope * threshold + intercept


def manders(x: np.ndarray, y: np.ndarray, tx: float, ty: float) -> tuple[float, float]:
    """Manders' M1 (share of x above its threshold that lies where y is above its) and M2 (the reverse)."""
    ax, ay = x > tx, y > ty
    m1 = float(x[ax & ay].sum() / x[ax].sum()) if x[ax].sum() > 0 else float("nan")
    m2 = float(y[ax & ay].sum() / y[ay].sum()) if y[ay].sum() > 0 else float("nan")
    return m1, m2


def _cyclic_sums(a: np.ndarray, b: np.ndarray, region: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Pearson's r of ``a`` against ``b`` cyclically shifted by each of ``shifts`` (k x 2, (dy, dx) as in
    ``np.roll``), over the pixels inside the region, its shifted copy and where both maps are finite.

    The six sums behind each r (pixel count, sums, sums of squares, cross products) are circular
    cross-correlations of the masked maps, computed for every shift at once with FFTs, so a shift costs no pass
    over the image. The maps are centred on their region means first: the sums of squares then do not cancel.
    """
    ma = region & np.isfinite(a)
    mb = region & np.isfinite(b)
    ca = np.where(ma, a - a[ma].mean(), 0.0)
    cb = np.where(mb, b - b[mb].mean(), 0.0)
    shape = a.shape
    dy, dx = shifts[:, 0], shifts[:, 1]

    def spectrum(x):
        return fft.rfft2(x, workers=available_cpus())

    def at_shifts(fx, fy):  # sum_x X(x) Y(x - s) at the requested shifts s
        return fft.irfft2(fx * np.conj(fy), s=shape, workers=available_cpus())[dy, dx]

    f_ma, f_mb = spectrum(ma.astype(np.float64)), spectrum(mb.astype(np.float64))
    n = np.rint(at_shifts(f_ma, f_mb))
    f_a = spectrum(ca)
    sum_a = at_shifts(f_a, f_mb)
    sum_aa = at_shifts(spectrum(ca * ca), f_mb)
    f_b = spectrum(cb)
    sum_ab = at_shifts(f_a, f_b)
    del f_a
    sum_b = at_shifts(f_ma, f_b)
    sum_bb = at_shifts(f_ma, spectrum(cb * cb))
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sum_ab - sum_a * sum_b / n
        var = (sum_aa - sum_a ** 2 / n) * (sum_bb - sum_b ** 2 / n)
        r = np.where((n >= 3) & (var > 0), cov / np.sqrt(np.where(var > 0, var, 1.0)), np.nan)
    return r


def shift_offsets(shape, n_shifts: int, min_shift_px: int, seed: int) -> np.ndarray:
    """``n_shifts`` random cyclic shifts ``(dy, dx)`` of a map of ``shape``, each at least ``min_shift_px`` along one
    axis (seeded); an empty array when the map is too small for any."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    if max(ny, nx) <= 2 * min_shift_px:
        return np.zeros((0, 2), dtype=np.int64)
    shifts = []
    while len(shifts) < n_shifts:
        dy, dx = int(rng.integers(0, ny)), int(rng.integers(0, nx))
        if max(min(dy, ny - dy), min(dx, nx - dx)) < min_shift_px:
            continue
        shifts.append((dy, dx))
    return np.array(shifts, dtype=np.int64).reshape(-1, 2)


def _p_from_shifts(shifted_r: np.ndarray, r: float) -> float:
    if shifted_r.size == 0:
        return float("nan")
    hits = int(np.sum(shifted_r >= r))  # NaN (fewer than 3 pixels in the overlap) is no hit
    return (1 + hits) / (1 + shifted_r.size)


def shift_p_value(a: np.ndarray, b: np.ndarray, region: np.ndarray, r: float, n_shifts: int, min_shift_px: int,
                  seed: int) -> float:
    """Toroidal-shift p-value of Pearson's ``r`` (one-sided: as large or larger by chance alignment).

    ``b`` and the region are cyclically shifted together by random offsets of at least ``min_shift_px``
    along one axis (:func:`shift_offsets`); r is recomputed over the pixels inside both the region and the
    shifted region (:func:`_cyclic_sums`: all shifts at once, in the time of a dozen FFTs of the map).
    """
    shifts = shift_offsets(np.shape(a), n_shifts, min_shift_px, seed)
    if shifts.size == 0:
        return float("nan")
    return _p_from_shifts(_cyclic_sums(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                       np.asarray(region, bool), shifts), r)


def shifted_correlations(maps: dict[str, np.ndarray], region: np.ndarray,
                         shifts: dict[tuple[str, str], np.ndarray]) -> dict[tuple[str, str], np.ndarray]:
    """:func:`_cyclic_sums` of many pairs of maps over one region: ``{(a, b): r at shifts[(a, b)]}``.

    Where every map is finite over the same pixels of the region (the usual case), the sums share their
    transforms: each map's centred values and squares are transformed once and correlated once with the common
    mask (a map's sums as the second map of a pair are those as the first, at the opposite shifts), and each
    pair costs one more inverse transform for its cross products: about 4 transforms per map and 1 per pair
    instead of 12 per pair. Otherwise each pair is computed on its own. The results are those of
    :func:`_cyclic_sums` (``tests/test_colocalisation.py``).
    """
    region = np.asarray(region, bool)
    masks = {k: region & np.isfinite(v) for k, v in maps.items()}
    first = next(iter(masks.values()), None)
    if first is None or any(not np.array_equal(m, first) for m in masks.values()):
        return {(a, b): _cyclic_sums(np.asarray(maps[a], np.float64), np.asarray(maps[b], np.float64), region, sh)
                for (a, b), sh in shifts.items()}
    if int(first.sum()) < 3:  # no pair has 3 pixels at any shift
        return {pair: np.full(len(sh), np.nan) for pair, sh in shifts.items()}
    shape, workers = first.shape, available_cpus()
    ny, nx = shape

    def at(full, sh, sign=1):
        return full[(sign * sh[:, 0]) % ny, (sign * sh[:, 1]) % nx]

    def correlate(fx, conj_fy):  # sum_x X(x) Y(x - s) at every s from X's spectrum and Y's conjugate one
        product = fx * conj_fy
        return fft.irfft2(product, s=shape, workers=workers, overwrite_x=True)

    conj_m = np.conj(fft.rfft2(first.astype(np.float64), workers=workers))  # the mask's spectrum only conjugated
    n_full = correlate(np.conj(conj_m), conj_m)
    n = {pair: np.rint(at(n_full, sh)) for pair, sh in shifts.items()}
    del n_full
    spectra, sums = {}, {}  # sums[(k, pair)]: (sum, sum of squares) of map k's centred values at that pair's shifts
    for k, values in maps.items():
        values = np.asarray(values, np.float64)
        c = np.where(first, values - values[first].mean(), 0.0)
        squares = fft.rfft2(c * c, workers=workers)
        sq_full = correlate(squares, conj_m)
        del squares
        mine = [((a, b), sh, 1 if k == a else -1) for (a, b), sh in shifts.items() if k in (a, b)]
        squares_at = {pair: at(sq_full, sh, sign) for pair, sh, sign in mine}  # as the first map: at s; second: -s
        del sq_full
        spectra[k] = fft.rfft2(c, workers=workers)
        del c
        sum_full = correlate(spectra[k], conj_m)
        for pair, sh, sign in mine:
            sums[(k, pair)] = (at(sum_full, sh, sign), squares_at[pair])
        del sum_full
    out = {}
    for (a, b), sh in shifts.items():
        sum_ab = at(correlate(spectra[a], np.conj(spectra[b])), sh)
        (sum_a, sum_aa), (sum_b, sum_bb), count = sums[(a, (a, b))], sums[(b, (a, b))], n[(a, b)]
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = sum_ab - sum_a * sum_b / count
            var = (sum_aa - sum_a ** 2 / count) * (sum_bb - sum_b ** 2 / count)
            out[(a, b)] = np.where((count >= 3) & (var > 0), cov / np.sqrt(np.where(var > 0, var, 1.0)), np.nan)
    return out


def colocalisation(a: np.ndarray, b: np.ndarray, region: np.ndarray, *, n_shifts: int = 199,
                   min_shift_px: int = 10, seed: int = 0, ranks: tuple | None = None,
                   shifted_r: np.ndarray | None = None) -> dict[str, float]:
    """Every colocalisation measure of maps ``a`` and ``b`` (same grid) over ``region``.

    ``ranks`` optionally gives the ranks (average for ties; any positive multiple, e.g. :func:`doubled_ranks`) of
    a's and b's values over the region's pixels where both are finite, in the order of ``a[inside]``: a caller
    measuring many pairs over one set ranks each map once (:func:`ranks_over`). ``shifted_r`` optionally gives r
    at the shifts of :func:`shift_offsets` ``(a.shape, n_shifts, min_shift_px, seed)``, computed for many pairs at
    once (:func:`shifted_correlations`).

    Returns
    -------
    dict
        ``pearson``, ``spearman``, ``pearson_p_shift`` (:func:`shift_p_value`), ``costes_threshold_a`` and
        ``_b`` (map units), ``manders_m1`` and ``manders_m2`` at those thresholds (NaN when the maps are not
        positively correlated).
    """
    x, y = _pair(a, b, region)
    r = _pearson(x, y)
    if ranks is None:
        ranks = (doubled_ranks(x), doubled_ranks(y))
    elif len(ranks[0]) != x.size or len(ranks[1]) != y.size:
        raise ValueError("the ranks do not cover the pixels of the pair")
    out = {"pearson": r, "spearman": _pearson(*ranks),  # Spearman's rho: Pearson's r of the ranks
           "pearson_p_shift": float("nan")}
    if np.isfinite(r):
        out["pearson_p_shift"] = (shift_p_value(a, b, region, r, n_shifts, min_shift_px, seed) if shifted_r is None
                                  else _p_from_shifts(shifted_r, r))
    try:
        tx, ty = costes_thresholds(x, y)
        m1, m2 = manders(x, y, tx, ty)
    except InputError:
        tx = ty = m1 = m2 = float("nan")
    out.update(costes_threshold_a=tx, costes_threshold_b=ty, manders_m1=m1, manders_m2=m2)
    return out


def doubled_ranks(x: np.ndarray) -> np.ndarray:
    """Twice the ranks of ``x`` (1-D), ties given their average rank (as ``scipy.stats.rankdata``): integers, so
    they fit int32 below a billion values; Pearson's r of doubled ranks is Spearman's rho. An unstable sort
    suffices since tied values share one rank (about twice as fast as rankdata's stable sort on 10 million values).
    """
    order = np.argsort(x)
    ordered = x[order]
    n = x.size
    dtype = np.int32 if 2 * n + 1 < 2 ** 31 else np.int64
    first = np.concatenate(([True], ordered[1:] != ordered[:-1]))  # where each distinct value starts
    del ordered
    starts = np.flatnonzero(first)
    ends = np.append(starts[1:], n)  # one past the last
    group = np.cumsum(first, dtype=dtype) - 1
    out = np.empty(n, dtype=dtype)
    out[order] = (starts + ends + 1).astype(dtype)[group]  # 2 x the mean of ranks start + 1 .. end
    return out


def ranks_over(maps: dict[str, np.ndarray], region: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The pixels of ``region`` where every map is finite, and each map's doubled ranks over them
    (:func:`doubled_ranks`; for :func:`colocalisation`'s ``ranks`` when a pair's own pixel set is this one)."""
    common = region.copy()
    for values in maps.values():
        common &= np.isfinite(values)
    return common, {name: doubled_ranks(values[common]) for name, values in maps.items()}
