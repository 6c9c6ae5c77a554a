"""Channels of a microscopy image by role (nuclei, vessels, nanoparticle, macrophages)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..image import SectionImage
from ..settings import MicroscopySettings


def role_channel(image: SectionImage, settings: MicroscopySettings, role: str, path: str) -> np.ndarray:
    """The channel playing ``role``, with an error naming the file and the available channels if absent."""
    name = settings.channel(role)
    if name not in image.channels:
        raise InputError(f"{path}: channel {name!r} (configured for role {role}) is not in the file; "
                         f"its channels are {image.channels}")
    return image.channel(name)
