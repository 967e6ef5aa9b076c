"""Reports of a matrix run: terminal (rich), JSON, and friends."""
