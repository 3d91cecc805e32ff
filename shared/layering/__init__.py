"""layering."""
