"""Heterogeneity quantification: metrics of a map in a region (metrics), the analysis grid and masks on
it (grid), one section's metric tables (section), volumes (volume) and the cohort tables (cohort)."""

from .grid import AnalysisGrid, masks_on_msi_grid
from .metrics import distance_profile, distance_to_mask_um, half_distance_um, map_metrics, profile_auc, region_stats
from .volume import volume_metrics

__all__ = ["AnalysisGrid", "distance_profile", "distance_to_mask_um", "half_distance_um", "map_metrics",
           "masks_on_msi_grid", "profile_auc", "region_stats", "volume_metrics"]
