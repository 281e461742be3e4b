"""The pretraining losses, one a file (lightly's ``loss/`` layout); the methods in ``../methods/`` use them.

- ``patch_contrast.py``   anchor vs positives and negatives, cosine (the study) or InfoNCE
- ``center.py``           center loss (Wen et al. 2016)
- ``negative_cosine.py``  BYOL's 2 − 2·cos
- ``emd.py``              Self-EMD's earth mover's distance over dense maps, by ``sinkhorn.py``
- ``sinkhorn.py``         batched log-domain entropic Sinkhorn
- ``info_nce.py``         symmetric in-batch InfoNCE (InsLoc)
"""
