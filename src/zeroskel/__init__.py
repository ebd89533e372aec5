"""zeroskel: zero-shot skeleton-based action recognition (PGFA, Flora, baselines)."""
__version__ = "0.1.0"
