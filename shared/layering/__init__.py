"""Split a Nix closure into container image layers.

The algorithm and its rationale are described in `layering.split`.
"""

from layering.graph import PathInfo
from layering.split import split_layers

# Docker (overlay2) allows about 125 layers per image; 94 leaves room for the layers
# users add on top of ours and for our own customisation layer. Nixery uses the same.
DEFAULT_BUDGET = 94

__all__ = ["DEFAULT_BUDGET", "PathInfo", "split_layers"]
