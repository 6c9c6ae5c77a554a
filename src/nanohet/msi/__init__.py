"""Mass spectrometry imaging: raw .ibd access, the one-pass extraction and its kernels, normalisation."""

from .._lazy import lazy_exports
from .normalise import clip_hotspots, normalise  # eager: the function shadows its module's name

__getattr__, __dir__, _lazy = lazy_exports(__name__, {
    "extract": ["BLOCKS_PER_CHUNK", "IonTarget", "MSIImages", "block_starts", "extract_ion_images",
                "grid_positions"],
})
__all__ = sorted(_lazy + ["clip_hotspots", "normalise"])
