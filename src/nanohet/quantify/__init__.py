"""Heterogeneity quantification: metrics of a map in a region (metrics), the analysis grid and masks on
it (grid), one section's metric tables (section), volumes (volume) and the cohort tables (cohort)."""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "grid": ["AnalysisGrid", "masks_on_msi_grid"],
    "metrics": ["distance_profile", "distance_to_mask_um", "half_distance_um", "map_metrics", "profile_auc",
                "region_stats"],
    "volume": ["volume_metrics"],
})
