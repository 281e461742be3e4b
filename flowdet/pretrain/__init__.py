"""Self-supervised backbone pretraining: frame mining (torch-free) and the SSL methods.

- ``mine.py``            videos / image folders → de-duplicated JPEG frames + ``manifest.jsonl``
- ``mine_parallel.py``   ``mine --workers N``: one source per process, parts merged in source order
- ``leakage.py``         the guard: no pretraining frame may be a val/test image (pixel hash, near-duplicates)
- ``frames.py``          frame lists (manifest, folder, list file, COCO json) and the frame cache
- ``crops.py``           patch / view sampling and photometric augmentation (numpy + cv2)
- ``sinkhorn.py``        batched log-domain entropic Sinkhorn EMD
- ``heads.py``           embedding head and MLP projectors shared by the methods
- ``patch_contrast.py``  the reference study's patch contrast (cosine) + InfoNCE variant
- ``center_loss.py``     fg/bg patch classification with cross-entropy + center loss
- ``byol.py``            BYOL (pooled vector) — the baseline Self-EMD is measured against
- ``self_emd.py``        Self-EMD: BYOL on dense feature maps compared by EMD
- ``composite.py``       InsLoc composites: crops of a frame pasted at 8–32 px into two other frames
- ``insloc.py``          InsLoc-style instance localization: RoIAlign box features, InfoNCE
- ``efficiency.py``      ``flowdet efficiency``: scratch vs pretrained at label fractions (resumable grid)
- ``efficiency_report.py`` its table, plot and verdict (judged against the seed spread)
- ``train.py``           the shared loop: ``pretrain(cfg) -> summary``

Nothing here is imported by ``flowdet --help``; ``mine`` and ``composite`` never import torch (``leakage``
and ``efficiency`` do only through ``frames.py``'s frame lists).
"""
