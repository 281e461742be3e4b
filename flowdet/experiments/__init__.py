"""Experiments that run the stages end to end and judge the result; no stage imports them.

- ``efficiency.py``         ``flowdet efficiency``: scratch vs pretrained vs semi-supervised detectors at
                            label fractions (resumable grid, each point through the real CLI)
- ``efficiency_semi.py``    its semi points: the unlabeled frames (the rest of the training images, labels
                            hidden, + ``--unlabeled``), checked for val images before any training
- ``efficiency_io.py``      its ``results.json``, subprocess runner and metrics.csv seconds
- ``efficiency_report.py``  its table, plot and verdict (judged against the seed spread)

They may import ``flowdet.detect``, ``flowdet.pretrain`` and ``flowdet.mine``; only ``flowdet.commands``
imports them (tests/test_layout.py).
"""
