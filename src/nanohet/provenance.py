"""Which version of the package code produced an output: a hash of the source files a step runs.

Each rule passes ``code_version(...)`` of the packages its step uses as a param, so that a change of that
code makes the rule's outputs out of date (Snakemake tracks params, not the package a script imports).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# modules every step uses (settings, images, files, logging)
CORE = ("__init__.py", "_lazy.py", "atomic.py", "errors.py", "image.py", "logs.py", "settings.py", "io", "steps/__init__.py")


def code_version(*parts: str) -> str:
    """A short sha256 of the sources of ``parts`` (subpackages such as ``msi`` or modules such as
    ``steps/msi.py``, relative to the package) and of the core modules.

    Returns
    -------
    str
        16 hex digits; the same for the same code on any machine.
    """
    h = hashlib.sha256()
    for part in sorted(set(CORE) | set(parts)):
        path = PACKAGE / part
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            h.update(f.relative_to(PACKAGE).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]
