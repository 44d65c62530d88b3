#!/usr/bin/env python3
"""Capturing Kafka proxy for the fuzz seed corpus.

Listens on LISTEN_PORT, forwards every connection to the broker at
BROKER_PORT, and records what each client sends: the whole client-to-broker
byte stream of a connection (a `frame` seed) and each request frame without
its size prefix (a `request` seed), named `<client>-<api key>-v<version>-<n>`.
Run the broker with `--advertised-listener 127.0.0.1:LISTEN_PORT` so clients
come back through the proxy after bootstrap.

usage: proxy.py LISTEN_PORT BROKER_PORT OUT_DIR CLIENT_NAME
"""

import os
import socket
import struct
import sys
import threading

listen_port, broker_port, out_dir, client = (
    int(sys.argv[1]),
    int(sys.argv[2]),
    sys.argv[3],
    sys.argv[4],
)
os.makedirs(os.path.join(out_dir, "frame"), exist_ok=True)
os.makedirs(os.path.join(out_dir, "request"), exist_ok=True)
lock = threading.Lock()
counter = [0]


def next_id():
    with lock:
        counter[0] += 1
        return counter[0]


def pump_responses(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(conn):
    upstream = socket.create_connection(("127.0.0.1", broker_port))
    threading.Thread(target=pump_responses, args=(upstream, conn), daemon=True).start()
    stream = bytearray()
    pending = bytearray()
    conn_id = next_id()
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            upstream.sendall(data)
            stream += data
            pending += data
            while len(pending) >= 4:
                (size,) = struct.unpack(">i", pending[:4])
                if len(pending) < 4 + size:
                    break
                frame = bytes(pending[4 : 4 + size])
                del pending[: 4 + size]
                key, version = struct.unpack(">hh", frame[:4])
                name = f"{client}-{key}-v{version}-{next_id()}"
                with open(os.path.join(out_dir, "request", name), "wb") as f:
                    f.write(frame)
    except OSError:
        pass
    finally:
        upstream.close()
        conn.close()
        with open(os.path.join(out_dir, "frame", f"{client}-conn-{conn_id}"), "wb") as f:
            f.write(stream)


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen_port))
server.listen(64)
while True:
    c, _ = server.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
