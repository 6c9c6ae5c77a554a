"""A first extraction at full speed: the compiled kernel prepared while the imzML index is read.

A new process spends most of a first extraction reading the XML index and compiling the pass's kernel (numba:
about a second; then cached for later processes). Both need a core and both hold Python's lock, so
:func:`read_index_with_kernels` reads the index in a forked process while this one compiles
(:func:`prepare_kernels`) for the encodings and mode the file's head declares. The extraction itself is
:func:`nanohet.msi.extract.extract_ion_images`.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ..io.imzml import ImzMLIndex, read_imzml_index
from ..io.imzml_index import read_layout
from .extract import (AUTO_NUMPY_PEAKS, IonTarget, _kernel_args, _kernel_continuous, _kernel_processed,
                      _pass_state)


def prepare_kernels(mz_dtype, int_dtype, continuous: bool, lock_mass: bool = False) -> None:
    """Compile (or load from numba's cache) the kernel a file of these encodings and mode will use, by running
    the pass's own code on two synthetic spectra: the same functions and argument types as the real call, so
    the real call finds the kernel ready (:func:`read_index_with_kernels` does this while the index is read)."""
    from . import kernels as kern

    mz_dtype, int_dtype = np.dtype(mz_dtype), np.dtype(int_dtype)
    n = 4
    mz = np.linspace(500.0, 501.0, n).astype(mz_dtype)
    ints = np.ones(2 * n, dtype=int_dtype)
    if continuous:  # one shared axis, then each spectrum's intensities
        buffer = mz.tobytes() + ints.tobytes()
        mz_off = np.zeros(2, np.int64)
        int_off = mz.nbytes + np.arange(2, dtype=np.int64) * n * int_dtype.itemsize
    else:  # each spectrum's m/z array, then its intensities
        buffer = (mz.tobytes() + ints[:n].tobytes()) * 2
        step = mz.nbytes + n * int_dtype.itemsize
        mz_off = np.array([0, step], np.int64)
        int_off = mz_off + mz.nbytes
    src = np.frombuffer(buffer, dtype=np.uint8)  # read-only, like the mapped file
    lengths = np.full(2, n, np.int64)
    index = ImzMLIndex(Path("prepare.imzML"), Path("prepare.ibd"), np.array([[1, 1], [2, 1]]), mz_off, lengths,
                       int_off, lengths, mz_dtype, int_dtype, continuous, (1.0, 1.0), "0" * 32)
    lock = IonTarget("lock", 500.5, 100.0) if lock_mass else None
    p = _pass_state(index, [IonTarget("t", 500.5, 100.0)], "sum", lock, False, (499.0, 502.0), 0.01)
    if continuous:
        p.read_axis(src)
    kargs = {**_kernel_args(p, kern), "workers": None}
    blocks = np.array([0, 2], np.int64)
    if continuous:
        _kernel_continuous(p, kern, kargs, (None, 0, src, 0), 0, 2, blocks)
    else:
        _kernel_processed(p, kern, kargs, (src, 0, src, 0), 0, 2, blocks)


def read_index_with_kernels(path, *, engine: str = "auto", lock_mass: bool = False) -> ImzMLIndex:
    """:func:`nanohet.io.imzml.read_imzml_index`, with the compiled kernel the file needs prepared meanwhile.

    A new process spends most of a first extraction reading the XML index and compiling the kernel (numba: about
    a second; then cached). Both need a core, and both hold Python's lock, so the index is read in a forked
    process while this one compiles (:func:`prepare_kernels`) for the encodings and mode the file's head
    declares (:func:`nanohet.io.imzml_index.read_layout`). Where that cannot help (the numpy path will be used,
    the head does not tell, numba is not installed, or not on Linux, where forking is safe) the index is simply
    read. The index is the same either way; errors are the reader's.
    """
    layout = read_layout(path)
    small = layout is not None and layout["count"] * layout["first_peaks"] <= AUTO_NUMPY_PEAKS
    if layout is None or engine == "numpy" or (engine == "auto" and small) or not sys.platform.startswith("linux"):
        return read_imzml_index(path)
    try:
        from . import kernels  # noqa: F401
    except ImportError:
        return read_imzml_index(path)
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("fork")) as pool:
        pending = pool.submit(read_imzml_index, path)
        prepare_kernels(np.dtype(layout["mz_precision"]).newbyteorder("<"),
                        np.dtype(layout["int_precision"]).newbyteorder("<"), layout["continuous"], lock_mass)
        return pending.result()
