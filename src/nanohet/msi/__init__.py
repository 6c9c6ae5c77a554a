"""Mass spectrometry imaging: raw .ibd access, the one-pass extraction and its kernels, normalisation."""

from .extract import BLOCKS_PER_CHUNK, IonTarget, MSIImages, block_starts, extract_ion_images, grid_positions
from .normalise import clip_hotspots, normalise

__all__ = ["BLOCKS_PER_CHUNK", "IonTarget", "MSIImages", "block_starts", "clip_hotspots", "extract_ion_images",
           "grid_positions", "normalise"]
