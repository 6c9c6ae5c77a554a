"""The registration graph of a sample: edges moving -> fixed, composed into one reference frame.

Edges are declared in the config (``registration.edges``). Every section
modality of a sample reaches the reference (the fluorescence section) along
one chain of edges, for example ``msi -> he -> fluorescence`` when the MSI
section was stained with H&E afterwards. The transforms of a chain are
composed into one, so every image is interpolated once, from its own grid
to the reference grid (as wsireg does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..settings import SECTION_MODALITIES, VOLUME_MODALITIES  # noqa: F401 (re-exported)

REFERENCE = "fluorescence"  # the default reference frame of sections (registration.reference)


@dataclass(frozen=True)
class Edge:
    """One registration: ``moving`` onto ``fixed``, with settings overriding ``registration``."""

    moving: str
    fixed: str
    settings: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        return f"{self.moving}_to_{self.fixed}"


def parse_edges(items, modalities=SECTION_MODALITIES, reference: str = REFERENCE,
                key: str = "registration.edges") -> list[Edge]:
    """Edges of ``registration.edges``: each item a dict with ``moving``, ``fixed`` and optional overrides.

    ``modalities`` and ``reference`` default to sections onto the fluorescence
    frame; volumes use :data:`VOLUME_MODALITIES` and their own reference.

    Raises
    ------
    InputError
        Unknown modality, an edge onto itself, a modality that is moving in
        two edges (it would have two positions), or a cycle.
    """
    edges = []
    for i, item in enumerate(items):
        moving, fixed = item.get("moving"), item.get("fixed")
        for role, value in (("moving", moving), ("fixed", fixed)):
            if value not in modalities:
                raise InputError(f"{key}[{i}]: {role} {value!r} is not one of {list(modalities)}")
        if moving == fixed:
            raise InputError(f"{key}[{i}]: {moving} is registered onto itself")
        if moving == reference:
            raise InputError(f"{key}[{i}]: {reference} is the reference frame and cannot be moving")
        if any(e.moving == moving for e in edges):
            raise InputError(f"{key}[{i}]: {moving} is moving in two edges; each modality needs "
                             "exactly one path to the reference")
        edges.append(Edge(moving, fixed, {k: v for k, v in item.items() if k not in ("moving", "fixed")}))
    by_moving = {e.moving: e for e in edges}
    for e in edges:
        seen, node = {e.moving}, e.fixed
        while node != reference:
            if node in seen:
                raise InputError(f"{key}: the chain from {e.moving} loops back to {node}")
            if node not in by_moving:
                raise InputError(f"{key}: {e.moving} is registered onto {node}, but {node} has no "
                                 f"edge towards the reference ({reference})")
            seen.add(node)
            node = by_moving[node].fixed
    return edges


def chain(edges: list[Edge], modality: str, reference: str = REFERENCE) -> list[Edge]:
    """Edges from ``modality`` to the reference, in order (first edge moves ``modality``)."""
    by_moving = {e.moving: e for e in edges}
    out, node = [], modality
    while node != reference:
        out.append(by_moving[node])
        node = by_moving[node].fixed
    return out


def sample_chains(edges: list[Edge], present: set[str], sample: str = "",
                  reference: str = REFERENCE) -> dict[str, list[Edge]]:
    """Chains to the reference of every modality of a sample that has an edge.

    Modalities without an edge are not registered. A chain through a
    modality the sample does not have is an error naming the sample.
    """
    out = {}
    for e in edges:
        if e.moving not in present:
            continue
        path = chain(edges, e.moving, reference)
        missing = [x.fixed for x in path if x.fixed not in present]
        if missing:
            raise InputError(f"sample {sample}: {e.moving} is registered via {missing[0]}, which the sample "
                             "sheet does not list for this sample")
        out[e.moving] = path
    return out


def compose(transforms_reference_first: list[sitk.Transform]) -> sitk.Transform:
    """One transform from a chain of edge transforms, 2-D or 3-D.

    Parameters
    ----------
    transforms_reference_first : list of sitk.Transform
        Edge transforms in ITK's convention (each maps its fixed frame to its
        moving frame), ordered from the edge onto the reference outwards:
        for ``msi -> he -> fluorescence`` that is ``[he_to_fluorescence,
        msi_to_he]``. Affine-family or composite (affine + B-spline) transforms.

    Returns
    -------
    sitk.AffineTransform or sitk.CompositeTransform
        Reference frame -> the chain's first moving frame: ``T_n o ... o T_1``.
        A chain of affine-family transforms gives one affine; otherwise
        consecutive affine maps are merged and the deformations kept, in a
        composite transform.
    """
    applied = [c for tx in transforms_reference_first for c in components(tx)]
    merged: list[sitk.Transform] = []
    run: list[sitk.Transform] = []
    for c in applied + [None]:
        if c is not None and _is_affine_family(c):
            run.append(c)
            continue
        if run:
            merged.append(_compose_affine(run))
            run = []
        if c is not None:
            merged.append(c)
    if len(merged) == 1 and isinstance(merged[0], sitk.AffineTransform):
        return merged[0]
    return sitk.CompositeTransform(list(reversed(merged)))  # the composite applies its last transform first


def invert(transform: sitk.Transform, points_per_axis: int = 200) -> sitk.Transform:
    """The inverse of an affine-family or composite (affine + B-spline) transform.

    A B-spline deformation is inverted numerically: its displacement field on
    ``points_per_axis`` points along each axis of its domain is inverted with
    ITK's fixed-point ``InvertDisplacementFieldImageFilter`` (outside the
    domain a B-spline does not move points, nor does its inverse).
    """
    inverted = []
    for c in reversed(components(transform)):
        if _is_affine_family(c):
            inverted.append(c.GetInverse())
            continue
        if c.GetName() != "BSplineTransform":
            raise ValueError(f"cannot invert a {c.GetName()}")
        bs = sitk.BSplineTransform(c)
        # the field reaches a quarter of the domain beyond it, where the deformation has faded to zero
        dims = np.asarray(bs.GetTransformDomainPhysicalDimensions())
        direction = np.asarray(bs.GetTransformDomainDirection()).reshape(len(dims), len(dims))
        spacing = dims * 1.5 / (points_per_axis - 1)
        origin = np.asarray(bs.GetTransformDomainOrigin()) - direction @ (dims * 0.25)
        field = sitk.TransformToDisplacementField(bs, sitk.sitkVectorFloat64, [points_per_axis] * len(dims),
                                                  tuple(origin), tuple(spacing), tuple(direction.ravel()))
        inverse = sitk.InvertDisplacementField(field, maximumNumberOfIterations=100, maxErrorToleranceThreshold=0.01,
                                               meanErrorToleranceThreshold=1e-4, enforceBoundaryCondition=True)
        inverted.append(sitk.DisplacementFieldTransform(inverse))
    if len(inverted) == 1:
        return inverted[0]
    return sitk.CompositeTransform(list(reversed(inverted)))


def components(tx: sitk.Transform) -> list[sitk.Transform]:
    """The transforms a (possibly nested composite) transform applies, first applied first."""
    if tx.GetName() != "CompositeTransform":
        return [tx]
    comp = sitk.CompositeTransform(tx)
    parts = [comp.GetNthTransform(i) for i in range(comp.GetNumberOfTransforms())]
    return [c for part in reversed(parts) for c in components(part)]


def _is_affine_family(tx: sitk.Transform) -> bool:
    try:
        _matrix_centre_translation(tx)
    except ValueError:
        return False
    return True


def _compose_affine(applied_first_first: list[sitk.Transform]) -> sitk.AffineTransform:
    dim = applied_first_first[0].GetDimension()
    a_total, t_total = np.eye(dim), np.zeros(dim)
    for tx in applied_first_first:
        a, c, t = _matrix_centre_translation(tx)
        # x -> a (x - c) + c + t  applied after the chain so far
        a_total, t_total = a @ a_total, a @ (t_total - c) + c + t
    out = sitk.AffineTransform(dim)
    out.SetMatrix(tuple(a_total.ravel()))
    out.SetTranslation(tuple(t_total))
    return out


def _matrix_centre_translation(tx: sitk.Transform):
    """Matrix, centre and translation of an affine-family transform (also when read back from a file)."""
    dim = tx.GetDimension()
    for cast in (sitk.AffineTransform, sitk.VersorRigid3DTransform, sitk.Euler3DTransform, sitk.Euler2DTransform,
                 sitk.Similarity2DTransform):
        try:
            typed = cast(tx)
            break
        except (RuntimeError, TypeError):
            continue
    else:
        raise ValueError(f"cannot compose a {tx.GetName()} transform (affine-family transforms only)")
    a = np.array(typed.GetMatrix()).reshape(dim, dim)
    return a, np.array(typed.GetCenter()), np.array(typed.GetTranslation())
