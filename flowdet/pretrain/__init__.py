"""Self-supervised backbone pretraining: the SSL methods and their loop (frames come from ``flowdet/mine/``;
the label-efficiency grid is in ``flowdet/experiments/``).

- ``datasets.py``        the torch Datasets over mined frames (seeded per epoch and sample)
- ``crops.py``           patch / view sampling and photometric augmentation (numpy + cv2)
- ``sinkhorn.py``        batched log-domain entropic Sinkhorn EMD
- ``heads.py``           embedding head and MLP projectors shared by the methods
- ``patch_contrast.py``  the reference study's patch contrast (cosine) + InfoNCE variant
- ``center_loss.py``     fg/bg patch classification with cross-entropy + center loss
- ``byol.py``            BYOL (pooled vector) — the baseline Self-EMD is measured against
- ``self_emd.py``        Self-EMD: BYOL on dense feature maps compared by EMD
- ``composite.py``       InsLoc composites: crops of a frame pasted at 8–32 px into two other frames
- ``insloc.py``          InsLoc-style instance localization: RoIAlign box features, InfoNCE
- ``train.py``           the shared loop: ``pretrain(cfg) -> summary``

Nothing here is imported by ``flowdet --help``; ``composite`` never imports torch.
"""
