"""Tracking and counting: detections per frame in, tracks and line/zone counts out.
Imports only :mod:`flowdet.core` (never ``predict/`` or ``stream/``).

- ``tracker.py``     :class:`ByteTracker`: two-stage association (high, then low scores), births, losses
- ``track.py``       :class:`Track` and :class:`TrackerConfig` (thresholds, buffers, options)
- ``kalman.py``      the constant-velocity Kalman filter on boxes
- ``assignment.py``  IoU / centre-gate costs and the linear assignment (scipy, or a greedy fallback)
- ``gmc.py``         camera-motion compensation (sparse optical flow → affine warp of the track states)
- ``counting.py``    line crossings and zone counts per interval, ``counts.csv``
- ``simulation.py``  synthetic tracks for tests and benchmarks of the tracker
"""
