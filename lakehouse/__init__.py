"""Shared library code for the bioprocess lakehouse: storage (one lake root, local or S3)."""
