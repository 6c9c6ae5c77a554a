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
    values = image.channel(name)
    if np.issubdtype(values.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise InputError(f"{path}: channel {name!r} (role {role}) holds {bad} NaN or infinite pixels of "
                             f"{values.size}; masks and measures need finite intensities")
    return values
