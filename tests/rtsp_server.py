"""A loopback RTSP server for the tests, run with the *system* python (Debian's python3-gi +
gir1.2-gst-rtsp-server-1.0): ``/usr/bin/python3 tests/rtsp_server.py PORT FILE.mp4`` serves the H.264
mp4 at rtsp://127.0.0.1:PORT/cam, looping, and prints "ready" once listening. Not imported by pytest."""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port, path = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
# multifilesrc loop=true plays the file over and over; qtdemux needs a fresh start each loop, so we
# use a single file and let the client reconnect at EOS instead (the reader does).
factory.set_launch(f"( filesrc location={path} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )")
factory.set_shared(False)
server.get_mount_points().add_factory("/cam", factory)
if server.attach(None) == 0:
    print("cannot listen", flush=True)
    sys.exit(1)
print("ready", flush=True)
GLib.MainLoop().run()
