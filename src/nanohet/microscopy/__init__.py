"""Fluorescence and H&E preprocessing: channels by role, tissue, necrosis and vessel masks, stains."""

from .channels import role_channel
from .masks import (MASK_CHANNELS, background_level, haematoxylin, necrosis_mask, section_masks, section_stats,
                    tissue_mask, vessel_mask)

__all__ = ["MASK_CHANNELS", "background_level", "haematoxylin", "necrosis_mask", "role_channel", "section_masks",
           "section_stats", "tissue_mask", "vessel_mask"]
