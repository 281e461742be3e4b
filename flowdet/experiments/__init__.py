"""Experiments that run the stages end to end and judge the result; no stage imports them.

- ``efficiency.py``         ``flowdet efficiency``: scratch vs pretrained detectors at label fractions
                            (resumable grid, each point through the real CLI)
- ``efficiency_report.py``  its table, plot and verdict (judged against the seed spread)

They may import ``flowdet.detect``, ``flowdet.pretrain`` and ``flowdet.mine``; only ``flowdet.commands``
imports them (tests/test_layout.py).
"""
