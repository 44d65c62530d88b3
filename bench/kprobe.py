#!/usr/bin/env python3
"""Raw Kafka-protocol probes for bench/run.sh (stdlib only, same code for both brokers).

  kprobe.py ready HOST:PORT --since EPOCH [--topic T --partitions N] [--timeout S]
      Polls with Metadata v4 until the broker answers (and, with --topic, until
      every partition of T has a leader). Prints the seconds since EPOCH.
  kprobe.py metadata HOST:PORT --topic T [--n 200]
      Sends Metadata v4 for T n times on one connection, one at a time.
      Prints p50 p99 max in milliseconds.
"""
import argparse
import socket
import struct
import sys
import time


def _str(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def metadata_request(corr, topics):
    body = struct.pack(">hhi", 3, 4, corr) + _str("vltava-bench")
    if topics is None:
        body += struct.pack(">i", -1)
    else:
        body += struct.pack(">i", len(topics)) + b"".join(_str(t) for t in topics)
    body += b"\x00"  # allow_auto_topic_creation = false
    return struct.pack(">i", len(body)) + body


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return bytes(buf)


class Reader:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.p)
        self.p += struct.calcsize(fmt)
        return v[0]

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.b[self.p:self.p + n].decode()
        self.p += n
        return s


def parse_metadata_v4(frame):
    r = Reader(frame)
    r.take(">i")  # correlation id
    r.take(">i")  # throttle
    for _ in range(r.take(">i")):
        r.take(">i"); r.string(); r.take(">i"); r.string()
    r.string(); r.take(">i")
    topics = {}
    for _ in range(r.take(">i")):
        err = r.take(">h"); name = r.string(); r.take(">b")
        parts = []
        for _ in range(r.take(">i")):
            perr = r.take(">h"); idx = r.take(">i"); leader = r.take(">i")
            for _ in range(r.take(">i")):
                r.take(">i")
            for _ in range(r.take(">i")):
                r.take(">i")
            parts.append((idx, perr, leader))
        topics[name] = (err, parts)
    return topics


def roundtrip(sock, corr, topics):
    sock.sendall(metadata_request(corr, topics))
    (n,) = struct.unpack(">i", recv_exact(sock, 4))
    return recv_exact(sock, n)


def addr(s):
    h, p = s.rsplit(":", 1)
    return h, int(p)


def ready(a):
    deadline = time.time() + a.timeout
    corr = 0
    while time.time() < deadline:
        try:
            with socket.create_connection(addr(a.bootstrap), timeout=2) as s:
                corr += 1
                topics = parse_metadata_v4(roundtrip(s, corr, [a.topic] if a.topic else None))
                if a.topic:
                    err, parts = topics.get(a.topic, (-1, []))
                    ok = err == 0 and len(parts) == a.partitions and all(
                        pe == 0 and ld >= 0 for _, pe, ld in parts)
                    if not ok:
                        raise RuntimeError("topic not ready")
                print(f"{time.time() - a.since:.3f}")
                return 0
        except (OSError, ConnectionError, RuntimeError, struct.error):
            time.sleep(0.005)
    print("timeout", file=sys.stderr)
    return 1


def metadata(a):
    lat = []
    with socket.create_connection(addr(a.bootstrap), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(a.n + 10):
            t = time.perf_counter()
            frame = roundtrip(s, i, [a.topic])
            dt = (time.perf_counter() - t) * 1000
            if i == 0:
                err, parts = parse_metadata_v4(frame)[a.topic]
                if err != 0:
                    print(f"metadata error {err}", file=sys.stderr)
                    return 1
            if i >= 10:  # warm-up
                lat.append(dt)
    lat.sort()
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]
    print(f"{q(0.5):.3f} {q(0.99):.3f} {lat[-1]:.3f}")
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["ready", "metadata"])
    p.add_argument("bootstrap")
    p.add_argument("--since", type=float, default=0.0)
    p.add_argument("--topic")
    p.add_argument("--partitions", type=int, default=0)
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--n", type=int, default=200)
    a = p.parse_args()
    return ready(a) if a.cmd == "ready" else metadata(a)


if __name__ == "__main__":
    sys.exit(main())
