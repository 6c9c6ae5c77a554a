"""Multimodal registration with SimpleITK: what each modality shows the metric (images), the optimiser,
the registration graph and its composition (graph), quality control and flags (qc), landmarks, volumes."""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "graph": ["Edge", "chain", "compose", "invert", "parse_edges", "sample_chains"],
    "optimise": ["RegistrationResult", "RegistrationSettings", "register"],
    "qc": ["deformation_summary", "dice", "target_registration_error"],
    "resample": ["reference_grid", "resample_to"],
    "images": ["prepare_image"],
    "volumes": ["register_rigid_3d", "resample_to_grid"],
})
