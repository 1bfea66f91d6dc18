#!/usr/bin/python3
"""A small RTSP server on 127.0.0.1 for the live-stream tests and Scripts/bench_live.sh.

Serves one H.264 file as rtsp://127.0.0.1:PORT/stream at real-time pace (GStreamer's RTSP server
paces by the clock). Each client gets its own session from the start of the file. The file is first
looped (and optionally scaled/re-timed) with ffmpeg into a temporary copy, so one session lasts
--seconds; the stream ends when that copy does.

Prints `READY rtsp://127.0.0.1:PORT/stream` on stdout once it listens; runs until killed.

Needs Debian's python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{base,good,bad}
and ffmpeg (Scripts/setup.sh installs them). Run with /usr/bin/python3 (Debian's, which has gi).

  Scripts/rtsp_test_server.py --input Samples/thirdparty/media/WolfgangLanger_Pexels.mp4 --port 8554
  Scripts/rtsp_test_server.py --input IN.mp4 --size 1280x720 --fps 30 --seconds 130
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def prepare(source, folder, seconds, size, fps, cache):
    """A looped H.264 mp4 copy of `source`, `seconds` long: stream copy, or re-encoded when scaling."""
    if cache and os.path.isfile(cache):
        return cache
    target = cache or os.path.join(folder, "looped.mp4")
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
               "-stream_loop", "-1", "-i", source, "-t", str(seconds), "-an"]
    if size or fps:
        filters = []
        if size:
            width, height = size.split("x")
            filters.append(f"scale={width}:{height}")
        if fps:
            filters.append(f"fps={fps}")
        # Keyframes every second, no B-frames: a camera's stream.
        gop = str(int(float(fps or 30)))
        command += ["-vf", ",".join(filters), "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0",
                    "-g", gop, "-pix_fmt", "yuv420p"]
    else:
        command += ["-c:v", "copy"]
    subprocess.run(command + [target + ".part.mp4"], check=True)
    os.replace(target + ".part.mp4", target)
    return target


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True, help="an mp4 with H.264 video")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free one)")
    parser.add_argument("--seconds", type=float, default=600, help="length of one session")
    parser.add_argument("--size", help="re-encode at WxH (for example 1280x720)")
    parser.add_argument("--fps", help="re-encode at this frame rate")
    parser.add_argument("--cache", help="keep the prepared copy at this path and reuse it")
    arguments = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="rtsp-test-server-")
    try:
        path = prepare(arguments.input, folder, arguments.seconds, arguments.size, arguments.fps, arguments.cache)
        Gst.init(None)
        server = GstRtspServer.RTSPServer()
        server.set_address("127.0.0.1")
        server.set_service(str(arguments.port))
        factory = GstRtspServer.RTSPMediaFactory()
        location = path.replace("\\", "\\\\").replace('"', '\\"')
        factory.set_launch(f'( filesrc location="{location}" ! qtdemux ! h264parse '
                           f'! rtph264pay name=pay0 pt=96 config-interval=1 )')
        factory.set_shared(False)
        server.get_mount_points().add_factory("/stream", factory)
        if server.attach(None) == 0:
            sys.exit(f"error: cannot listen on 127.0.0.1:{arguments.port}")
        print(f"READY rtsp://127.0.0.1:{server.get_bound_port()}/stream", flush=True)
        GLib.MainLoop().run()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
