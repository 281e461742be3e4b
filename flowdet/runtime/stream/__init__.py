"""Streaming: frame sources in, detections / tracks / counts / videos on disk out (``flowdet stream``).
The top of the runtime: it imports ``predict/`` and ``track/``; neither imports it.

- ``sources.py``          frame sources: video file, image folder, camera index, RTSP/HTTP URL
- ``source_reader.py``    the reader thread of a source, both loops (newest-frame policy, one back-off rule), ``--sources`` YAML
- ``records.py``          the jsonl record of a frame and latency percentiles, both loops
- ``loop.py``             the one inference loop (newest frame of each source, one batched predict per round)
- ``stream.py``           one source: that loop with one source, its jsonl / video / summary (``StreamOptions``)
- ``multistream.py``      many sources: that loop, per-source tracks and counts, status.json, summary.json (``MultiSourceOptions``)
- ``health.py``           the many-source run's lanes, status.json and health / progress lines
- ``source_tracking.py``  one tracker + counter (+ camera-motion compensation) per source
- ``signals.py``          graceful SIGINT / SIGTERM: finish the frame, close the files
"""
