"""Self-supervised backbone pretraining: the SSL methods and their loop (frames come from ``flowdet/mine/``;
the label-efficiency grid is in ``flowdet/experiments/``).

- ``registry.py``        methods by name: ``@register_method``, ``get_method``, ``method_names`` (torch-free)
- ``methods/``           one file per method (its module class, registered with its sampler and checks)
- ``losses/``            one file per loss (patch contrast, center, negative cosine, EMD + Sinkhorn, InfoNCE)
- ``heads.py``           embedding head and MLP projectors shared by the methods
- ``crops.py``           patch / view sampling and photometric augmentation (numpy + cv2)
- ``composite.py``       InsLoc composites: crops of a frame pasted at 8–32 px into two other frames
- ``datasets.py``        the torch Datasets over mined frames (seeded per epoch and sample)
- ``config.py``          the config (one flat ``method`` section: keys unchanged) and its checks
- ``train.py``           the shared loop: ``pretrain(cfg) -> summary``; the method comes from the registry

Nothing here is imported by ``flowdet --help``; ``composite`` never imports torch, ``registry`` and ``config``
only when a method is looked up (its file is imported).
"""
