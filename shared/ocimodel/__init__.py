"""ocimodel."""
