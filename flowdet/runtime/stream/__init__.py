"""Streaming: frame sources in, detections / tracks / counts / videos on disk out (``flowdet stream``).
The top of the runtime: it imports ``predict/`` and ``track/``; neither imports it.

- ``sources.py``          frame sources: video file, image folder, camera index, RTSP/HTTP URL
- ``source_reader.py``    the reader thread of a source, both loops (newest-frame policy, one back-off rule), ``--sources`` YAML
- ``records.py``          the jsonl record of a frame and latency percentiles, both loops
- ``stream.py``           the single-source loop (reader thread, latest-frame policy, reconnects)
- ``multistream.py``      many sources in one process: one batched inference loop, health, counts
- ``source_tracking.py``  one tracker + counter (+ camera-motion compensation) per source
- ``signals.py``          graceful SIGINT / SIGTERM: finish the frame, close the files
"""
