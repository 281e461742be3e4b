"""Box ops. ``boxes``/``nms``/``postprocess`` are numpy-only (shared with the edge runtime);
``iou`` is the torch IoU-loss family, imported only by training code."""
