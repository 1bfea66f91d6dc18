#!/usr/bin/env python3
"""Load check of `fer-annotate serve` on loopback: N simultaneous webcam clients (WebSocket /api/live, JPEG frames
of a sample video, one frame in flight each, as the page sends them) and M uploads at the same time, for a bounded
time. Prints frames answered per second (each client and all), round-trip latency p50/p95, the share each client
got (fairness), the jobs' outcome and the server's peak memory.

    Scripts/load_webapp.py                       starts its own server (.build/release/fer-annotate serve)
    Scripts/load_webapp.py --clients 4 --uploads 2 --seconds 30

Loopback only: it talks to the server it starts, on 127.0.0.1, and stops after --seconds.
"""
import argparse
import base64
import json
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def websocket(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /api/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += sock.recv(1)
    if b" 101 " not in reply.split(b"\r\n")[0]:
        raise RuntimeError(reply.decode(errors="replace"))
    return sock


def send_binary(sock, payload):
    header = bytes([0x82])
    length = len(payload)
    if length < 126:
        header += bytes([0x80 | length])
    elif length < 65536:
        header += bytes([0x80 | 126]) + struct.pack(">H", length)
    else:
        header += bytes([0x80 | 127]) + struct.pack(">Q", length)
    mask = os.urandom(4)
    sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def receive_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise RuntimeError("closed")
        data += chunk
    return data


def receive_text(sock):
    while True:
        first, second = receive_exactly(sock, 2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack(">H", receive_exactly(sock, 2))[0]
        elif length == 127:
            length = struct.unpack(">Q", receive_exactly(sock, 8))[0]
        payload = receive_exactly(sock, length)
        if first & 0x0F == 1:
            return payload.decode()


def peak_memory_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--uploads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--video", default=os.path.join(ROOT, "Samples/thirdparty/media/single_face.mp4"))
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/fer-annotate"))
    args = parser.parse_args()

    work = tempfile.mkdtemp()
    frames_folder = os.path.join(work, "frames")
    os.makedirs(frames_folder)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", args.video, "-t", "4", "-vf", "scale=640:-2",
                    "-q:v", "4", os.path.join(frames_folder, "%03d.jpg")], check=True)
    frames = [open(os.path.join(frames_folder, name), "rb").read() for name in sorted(os.listdir(frames_folder))]

    server = subprocess.Popen([args.binary, "serve", "--port", "0", "--data", os.path.join(work, "data"),
                               "--jobs", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = server.stdout.readline()
    port = int(re.search(r"127\.0\.0\.1:(\d+)/", line).group(1))
    base = f"http://127.0.0.1:{port}"
    print(f"server on {base}, {args.clients} webcam clients, {args.uploads} uploads, {args.seconds:.0f} s; "
          f"frames {len(frames)} JPEGs of {statistics.mean(map(len, frames)) / 1024:.0f} KB")

    latencies = [[] for _ in range(args.clients)]
    errors = []
    stop_at = time.time() + args.seconds

    def client(index):
        try:
            sock = websocket(port)
            sent = 0
            while time.time() < stop_at:
                started = time.perf_counter()
                send_binary(sock, frames[sent % len(frames)])
                record = json.loads(receive_text(sock))
                if record.get("type") != "frame":
                    errors.append(record)
                latencies[index].append((time.perf_counter() - started) * 1000)
                sent += 1
            sock.close()
        except Exception as error:  # reported below
            errors.append(f"client {index}: {error}")

    jobs = []
    with open(args.video, "rb") as file:
        video = file.read()
    for index in range(args.uploads):
        request = urllib.request.Request(f"{base}/api/jobs?name=upload{index}.mp4", data=video, method="POST")
        jobs.append(json.load(urllib.request.urlopen(request))["id"])
    threads = [threading.Thread(target=client, args=(index,)) for index in range(args.clients)]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.time() - started
    states = [json.load(urllib.request.urlopen(f"{base}/api/jobs/{job}"))["state"] for job in jobs]
    memory = peak_memory_mb(server.pid)
    server.terminate()
    server.wait(timeout=60)

    everything = [value for values in latencies for value in values]
    counts = [len(values) for values in latencies]
    print(f"frames answered: {sum(counts)} in {elapsed:.1f} s = {sum(counts) / elapsed:.1f}/s "
          f"(per client {', '.join(f'{count / elapsed:.1f}' for count in counts)})")
    if everything:
        quantiles = statistics.quantiles(everything, n=20)
        print(f"round trip: p50 {statistics.median(everything):.0f} ms, p95 {quantiles[-1]:.0f} ms")
    if counts and min(counts) > 0:
        print(f"fairness: the busiest client got {max(counts) / min(counts):.2f}x the frames of the least served")
    print(f"uploads at the end: {states}; server peak memory {memory:.0f} MB (VmHWM)")
    if errors:
        print(f"errors: {errors[:5]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
