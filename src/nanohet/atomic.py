"""Atomic file writing: a failed write never leaves a half-written output."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_paths(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Yield temporary paths that replace ``paths`` only if the block succeeds.

    The temporaries live in the target directories (so ``os.replace`` is
    atomic on one filesystem) and keep the final suffixes (so libraries that
    choose a format by extension still work). On any exception they are
    deleted and the targets are left untouched.

    Parameters
    ----------
    *paths : path-like
        Final output paths.

    Yields
    ------
    list of Path
        One temporary path per output, in the same order.
    """
    finals = [Path(p) for p in paths]
    temps = []
    for final in finals:
        final.parent.mkdir(parents=True, exist_ok=True)
        temps.append(final.with_name(f".{final.name}.{os.getpid()}.partial{''.join(final.suffixes)}"))
    try:
        yield temps
        for tmp, final in zip(temps, finals):
            os.replace(tmp, final)
    finally:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Single-path form of :func:`atomic_paths`."""
    with atomic_paths(path) as (tmp,):
        yield tmp


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_table(df, path: str | os.PathLike) -> None:
    """Write a pandas DataFrame as a tab-separated table, atomically.

    Floats are written with 10 significant digits so tables are stable across
    platforms and reruns.
    """
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.10g", lineterminator="\n")
