"""Versioned on-disk and wire formats: explicit mappings from core results, never `asdict()`."""
