"""Which files are images and which are videos, by extension (lower case; compare ``suffix.lower()``)."""
from __future__ import annotations

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# .ts: MPEG transport streams, what RTSP recorders and DVRs write.
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".ts")

