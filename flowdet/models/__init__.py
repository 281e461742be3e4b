"""YOLOX detector parts, one part a file: blocks, CSPDarknet backbone, PAFPN neck, decoupled head."""
from flowdet.models.yolox import MODEL_SIZES, YOLOX, build_backbone, build_model

__all__ = ["MODEL_SIZES", "YOLOX", "build_backbone", "build_model"]
