"""flowdet: unlabeled river video to an edge small-object detector."""
__version__ = "0.1.0"
