"""Storage: the only layer that writes SQL."""
