"""Lazy public names of a subpackage (PEP 562): ``from nanohet.quantify import x`` imports only the module that
defines ``x``. Each workflow job is a new Python process, so a package ``__init__`` that imported every module
(SciPy's signal and stats, matplotlib, ...) cost every job a second or two before it did any work."""

from __future__ import annotations

from importlib import import_module


def lazy_exports(package: str, modules: dict[str, list[str]]):
    """``(__getattr__, __dir__, __all__)`` for ``package``: each name of ``modules[m]`` is imported from
    ``package.m`` when first used."""
    where = {name: module for module, names in modules.items() for name in names}
    if set(where) & set(modules):  # an imported submodule would shadow the name: import those eagerly
        raise ValueError(f"{package}: names equal to a submodule cannot be lazy: {sorted(set(where) & set(modules))}")

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{where[name]}"), name)

    def __dir__():
        return sorted(where)

    return __getattr__, __dir__, sorted(where)
