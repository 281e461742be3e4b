"""Self-supervised backbone pretraining: frame mining (torch-free) and the SSL methods.

- ``mine.py``            videos / image folders → de-duplicated JPEG frames + ``manifest.jsonl``
- ``frames.py``          frame lists (manifest, folder, list file, COCO json) and the frame cache
- ``crops.py``           patch / view sampling and photometric augmentation (numpy + cv2)
- ``sinkhorn.py``        batched log-domain entropic Sinkhorn EMD
- ``heads.py``           embedding head and MLP projectors shared by the methods
- ``patch_contrast.py``  the reference study's patch contrast (cosine) + InfoNCE variant
- ``center_loss.py``     fg/bg patch classification with cross-entropy + center loss
- ``byol.py``            BYOL (pooled vector) — the baseline Self-EMD is measured against
- ``self_emd.py``        Self-EMD: BYOL on dense feature maps compared by EMD
- ``train.py``           the shared loop: ``pretrain(cfg) -> summary``

Nothing here is imported by ``flowdet --help``; ``mine`` never imports torch.
"""
