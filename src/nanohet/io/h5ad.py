"""AnnData (``.h5ad``) files written with h5py, following anndata's on-disk format specification.

squidpy and scanpy users continue from an ``.h5ad``: a matrix ``X`` (observations x variables), the observations'
table ``obs``, the variables' ``var``, per-observation arrays ``obsm`` (``obsm["spatial"]``: coordinates) and
unstructured ``uns``. The format is written here to the specification of anndata 0.8+ ("On-disk format",
anndata.readthedocs.io/en/stable/fileformat-prose.html; AnnData v0.1.0, dataframe v0.2.0, dense array v0.2.0,
categorical v0.2.0, string array v0.2.0, mapping v0.1.0, scalars v0.2.0), so nanohet does not depend on the
anndata package (which needs a newer Python than nanohet supports). :func:`read_h5ad_table` reads such a file back
(for the tests and for users without anndata).
"""

from __future__ import annotations

import os

import h5py
import numpy as np
import pandas as pd

from ..atomic import atomic_path

_STRING = h5py.string_dtype(encoding="utf-8")  # variable-length UTF-8, as the specification requires in HDF5


def _encoding(obj, kind: str, version: str) -> None:
    obj.attrs["encoding-type"] = kind
    obj.attrs["encoding-version"] = version


def _write_strings(group, name: str, values) -> None:
    ds = group.create_dataset(name, data=np.asarray([str(v) for v in values], dtype=object), dtype=_STRING)
    _encoding(ds, "string-array", "0.2.0")


def _write_column(group, name: str, column: pd.Series) -> None:
    """One dataframe column: numbers and booleans as arrays, text as a categorical (codes, categories)."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        _encoding(group.create_dataset(name, data=column.to_numpy()), "array", "0.2.0")
        return
    cat = pd.Categorical(column.astype(object).where(column.notna(), None))
    sub = group.create_group(name)
    _encoding(sub, "categorical", "0.2.0")
    sub.attrs["ordered"] = False
    width = np.int8 if len(cat.categories) < 127 else np.int32
    sub.create_dataset("codes", data=cat.codes.astype(width))  # -1: missing
    _write_strings(sub, "categories", cat.categories)


def h5ad_key(name: str) -> str:
    """A column or mapping key as the format allows it: HDF5 reads ``/`` as a path (``F4/80`` would become a group
    ``F4`` holding ``80``), so it becomes ``_`` (anndata refuses such keys too)."""
    return str(name).replace("/", "_")


def _write_dataframe(parent, name: str, frame: pd.DataFrame, index: list[str], index_name: str) -> None:
    frame = frame.rename(columns=h5ad_key)
    if frame.columns.duplicated().any():
        raise ValueError(f"columns {list(frame.columns[frame.columns.duplicated()])} collide once '/' becomes '_'")
    group = parent.create_group(name)
    _encoding(group, "dataframe", "0.2.0")
    group.attrs["_index"] = index_name
    group.attrs.create("column-order", data=[str(c) for c in frame.columns], dtype=_STRING)
    _write_strings(group, index_name, index)
    for col in frame.columns:
        _write_column(group, str(col), frame[col])


def _mapping(parent, name: str):
    group = parent.create_group(name)
    _encoding(group, "dict", "0.1.0")
    return group


def write_h5ad(path: str | os.PathLike, X: np.ndarray, var_names: list[str], obs: pd.DataFrame, obs_names: list[str],
               *, obsm: dict[str, np.ndarray] | None = None, uns: dict[str, str | float | int] | None = None) -> None:
    """Write an AnnData file atomically.

    Parameters
    ----------
    X : ndarray, (n_obs, n_var)
        The matrix (written as float32).
    var_names : list of str
        One name per column of ``X``.
    obs : DataFrame
        One row per observation: numeric and boolean columns are arrays, others categoricals. A ``/`` in a
        column name becomes ``_`` (:func:`h5ad_key`); variable names are strings and keep theirs.
    obs_names : list of str
        Unique observation names (the index).
    obsm : dict of str -> ndarray, optional
        Arrays whose first dimension is ``n_obs`` (``spatial``: ``(n_obs, 2)`` coordinates).
    uns : dict, optional
        Scalars (strings or numbers) stored in ``uns``.
    """
    X = np.asarray(X, dtype=np.float32)
    n_obs, n_var = X.shape
    if len(var_names) != n_var or len(obs) != n_obs or len(obs_names) != n_obs:
        raise ValueError(f"X is {n_obs} x {n_var} but there are {len(obs)} obs rows, {len(obs_names)} obs names and "
                         f"{len(var_names)} var names")
    if len(set(map(str, obs_names))) != n_obs:
        raise ValueError("observation names must be unique")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        _encoding(f, "anndata", "0.1.0")
        _encoding(f.create_dataset("X", data=X), "array", "0.2.0")
        _write_dataframe(f, "obs", obs.reset_index(drop=True), list(obs_names), "_index")
        _write_dataframe(f, "var", pd.DataFrame(index=range(n_var)), list(var_names), "_index")
        m = _mapping(f, "obsm")
        for key, value in (obsm or {}).items():
            key, value = h5ad_key(key), np.asarray(value)
            if value.shape[0] != n_obs:
                raise ValueError(f"obsm[{key!r}] has {value.shape[0]} rows for {n_obs} observations")
            _encoding(m.create_dataset(key, data=value), "array", "0.2.0")
        u = _mapping(f, "uns")
        for key, value in (uns or {}).items():
            key = h5ad_key(key)
            if isinstance(value, str):
                _encoding(u.create_dataset(key, data=value, dtype=_STRING), "string", "0.2.0")
            else:
                _encoding(u.create_dataset(key, data=value), "numeric-scalar", "0.2.0")
        for name in ("layers", "varm", "obsp", "varp"):
            _mapping(f, name)


def _read_column(item) -> np.ndarray:
    kind = item.attrs["encoding-type"]
    if kind == "categorical":
        categories = item["categories"].asstr()[()]
        codes = item["codes"][()]
        return np.where(codes >= 0, np.asarray(categories, dtype=object)[np.maximum(codes, 0)], None)
    if kind == "string-array":
        return np.asarray(item.asstr()[()], dtype=object)
    return item[()]


def read_h5ad_table(path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict]:
    """An ``.h5ad``'s ``obs`` joined with its ``X`` (one column per variable), its ``obsm`` arrays and ``uns``."""
    with h5py.File(path, "r") as f:
        obs_group, var_group = f["obs"], f["var"]
        index = _read_column(obs_group[obs_group.attrs["_index"]])
        columns = list(obs_group.attrs["column-order"])
        table = pd.DataFrame({c: _read_column(obs_group[c]) for c in columns}, index=pd.Index(index))
        var_names = _read_column(var_group[var_group.attrs["_index"]])
        X = f["X"][()]
        for k, name in enumerate(var_names):
            table[name] = X[:, k]
        obsm = {k: v[()] for k, v in f["obsm"].items()}
        uns = {k: (v.asstr()[()] if v.attrs["encoding-type"] == "string" else v[()]) for k, v in f["uns"].items()}
    return table, obsm, uns
