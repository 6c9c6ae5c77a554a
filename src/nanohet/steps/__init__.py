"""The step layer: one module per rules file, one function per rule. A step only reads its inputs, calls
the library (the stage packages) and writes its outputs, atomically.

The workflow's scripts call :func:`run_rule` (through ``workflow/scripts/_adapter.py``): the rule's named
inputs, params and wildcards become the step function's keyword arguments of the same names, each named
output ``x`` the argument ``out_x``, and ``threads`` the rule's threads. Tests call the functions directly.
"""

from __future__ import annotations

import importlib
import inspect

from ..io.ometiff import read_ome_tiff
from ..io.slide import Slide
from ..logs import run_step
from ..memory import reuse_freed_memory


def step_arguments(smk, func) -> dict:
    """The keyword arguments ``func`` takes, from a Snakemake job (see the module docstring)."""
    def plain(value):
        return value if isinstance(value, (str, int, float, dict, type(None))) else list(value)

    available = {}
    for name, value in smk.input.items():
        available[name] = plain(value)
    for name, value in smk.params.items():
        available[name] = value
    for name, value in smk.wildcards.items():
        available[name] = value
    for name, value in smk.output.items():
        available[f"out_{name}"] = plain(value)
    available["threads"] = smk.threads
    accepted = inspect.signature(func).parameters
    return {k: v for k, v in available.items() if k in accepted}


def run_rule(smk, module: str, function: str):
    """Run ``nanohet.steps.<module>.<function>`` for a Snakemake job, logging to the job's log file."""
    func = getattr(importlib.import_module(f"{__name__}.{module}"), function)
    reuse_freed_memory()  # large temporaries reuse freed memory, not fresh pages (nanohet.memory)
    return run_step(smk.log[0], func, **step_arguments(smk, func))


def one_input(value):
    """An optional single input as Snakemake gives it (a possibly empty list) or as a path: the path or None."""
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def read_section(path: str, pixel_size: float | None = None, channels: str | None = None,
                 working_um: float | None = None):
    """A microscopy section with the sample sheet's pixel size and comma-separated channel names, if given; at
    the working resolution ``working_um`` (``microscopy.working_pixel_um``: a whole slide's pyramid level or
    averaged blocks, :meth:`nanohet.io.slide.Slide.read_at`), or its own pixels when None."""
    names = [c.strip() for c in channels.split(",")] if channels else None
    if working_um is None:
        return read_ome_tiff(path, pixel_size_um=pixel_size, channel_names=names)
    with Slide(path, pixel_size_um=pixel_size, channel_names=names) as slide:
        return slide.read_at(float(working_um))


def section_geometry(path: str, pixel_size: float | None = None, channels: str | None = None,
                     working_um: float | None = None) -> dict:
    """What :func:`read_section` would give but the pixels: ``shape``, ``spacing``, ``origin`` (from the header)."""
    names = [c.strip() for c in channels.split(",")] if channels else None
    with Slide(path, pixel_size_um=pixel_size, channel_names=names) as slide:
        return slide.geometry_at(None if working_um is None else float(working_um))


def where(path, sample: str = "") -> str:
    """How error messages name a file: the path and the sample."""
    return f"{path} (sample {sample})" if sample else str(path)
