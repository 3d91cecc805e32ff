"""nixery."""
