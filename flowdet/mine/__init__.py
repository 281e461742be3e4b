"""Frames for pretraining and semi-supervised training: mining them from videos, listing them, and
keeping the evaluation images out. Torch-free (numpy + cv2) and independent of the SSL methods.

- ``miner.py``     videos / image folders → de-duplicated JPEG frames + ``manifest.jsonl`` (``flowdet mine``)
- ``parallel.py``  ``mine --workers N``: one source per process, parts merged in source order
- ``manifest.py``  the manifest, its lock and the per-source state, read as untrusted input
- ``frames.py``    frame lists (manifest, folder, list file, COCO json) and the frame cache
- ``leakage.py``   the guard: no frame may be a val/test image (pixel hash, near-duplicates)
- ``unlabeled.py`` ``--unlabeled`` sources (folders, lists, videos mined once) → frames, and their leak checks

Users: ``flowdet/pretrain/`` (``pretrain --frames``), ``flowdet/detect/semi.py`` (``--unlabeled``),
``flowdet/pseudo/`` (mined folders as sources) and the experiment harness.
"""
