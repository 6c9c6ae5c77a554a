"""Multimodal registration with SimpleITK: what each modality shows the metric (images), the optimiser,
the registration graph and its composition (graph), quality control and flags (qc), landmarks, volumes."""

from .graph import Edge, chain, compose, invert, parse_edges, sample_chains
from .optimise import RegistrationResult, RegistrationSettings, register
from .qc import deformation_summary, dice, target_registration_error
from .resample import reference_grid, resample_to
from .images import prepare_image
from .volumes import register_rigid_3d, resample_to_grid

__all__ = ["Edge", "RegistrationResult", "RegistrationSettings", "chain", "compose", "deformation_summary", "dice",
           "invert", "parse_edges", "prepare_image", "reference_grid", "register", "register_rigid_3d",
           "resample_to", "resample_to_grid", "sample_chains", "target_registration_error"]
