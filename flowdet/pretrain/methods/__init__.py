"""The pretraining methods, one a file, each registered by name (``flowdet/pretrain/registry.py``).

A file here is a method: ``<name with _>.py`` holds the module class decorated with
``@register_method("<name>", ...)``; its losses are in ``../losses/``. Only method files belong
here — the registry lists this folder to name the methods without importing them.

- ``patch_contrast.py``  the reference study's patch contrast (cosine) + InfoNCE variant
- ``center_loss.py``     fg/bg patch classification with cross-entropy + center loss (labelled COCO)
- ``byol.py``            BYOL (pooled vector) — the baseline Self-EMD is measured against
- ``self_emd.py``        Self-EMD: BYOL on dense feature maps compared by EMD
- ``insloc.py``          InsLoc-style instance localization: RoIAlign box features, InfoNCE
"""
