"""Fluorescence and H&E preprocessing: channels by role, tissue, necrosis and vessel masks, stains."""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "channels": ["role_channel"],
    "masks": ["MASK_CHANNELS", "background_level", "haematoxylin", "necrosis_mask", "section_masks",
              "section_stats", "tissue_mask", "vessel_mask"],
})
