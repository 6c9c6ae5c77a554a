"""Reproducibility: the paper archive (archive) and its verification by a rerun (verify)."""
