"""nanohet: multiscale imaging of nanomedicine spatial heterogeneity.

All analysis logic lives in this package as small functions on arrays plus
physical metadata (pixel spacing and origin in micrometres for sections,
millimetres for volumes). The Snakemake workflow only calls into it.
"""

__version__ = "0.1.0"
