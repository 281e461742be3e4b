"""YOLOX detector parts, one part a file: blocks, CSPDarknet backbone, PAFPN neck, decoupled head.

``sizes.py`` (the size registry) is torch-free; ``yolox.py`` builds the model. Nothing is imported
here, so the CLI reads the sizes without loading torch.
"""
