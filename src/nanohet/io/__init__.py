"""Reading and writing files: imzML, OME-TIFF and other microscopy images, volumes, the sample sheet."""
