"""Helpers shared by the scenarios: unique names, bounded waits, and a plain
Fetch (no client library's consumer) that returns the record batches exactly
as the broker serves them, so a test can check what was stored (codec,
offsets) independently of the client under test."""

import collections
import itertools
import os
import socket
import struct
import time

from kafka.record.memory_records import MemoryRecords

_RUN_ID = f"{int(time.time() * 1000):x}-{os.getpid()}"
_counter = itertools.count(1)


def uniq(base):
    """A topic or group name no other scenario or run uses."""
    return f"{base}-{_RUN_ID}-{next(_counter)}"


def wait_until(fn, what, timeout=15.0, interval=0.05):
    """Calls fn until it returns a truthy value (returned) or the time is up."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - reported when the time is up
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
        time.sleep(interval)


async def async_wait_until(fn, what, timeout=15.0, interval=0.05):
    import asyncio

    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = await fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
        await asyncio.sleep(interval)


# --- a plain Fetch v4 ---------------------------------------------------------

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def _str(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class _Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.o)
        self.o += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take(">h")
        s = self.b[self.o:self.o + n].decode()
        self.o += n
        return s

    def bytes(self):
        n = self.take(">i")
        if n < 0:
            return None
        v = self.b[self.o:self.o + n]
        self.o += n
        return v


def _recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        out += chunk
    return out


def fetch_v4(bootstrap, topic, partition, offset, timeout=10.0):
    """One Fetch v4 (isolation READ_UNCOMMITTED) of topic/partition from offset.
    Returns (error_code, high_watermark, raw record-batch bytes)."""
    host, port = bootstrap.rsplit(":", 1)
    body = struct.pack(">iiiib", -1, 100, 1, 8 << 20, 0)
    body += struct.pack(">i", 1) + _str(topic)
    body += struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, 4 << 20)
    header = struct.pack(">hhi", 1, 4, 7) + _str("compat-raw-fetch")
    msg = header + body
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", _recv_exact(s, 4))[0]
        r = _Reader(_recv_exact(s, size))
    assert r.take(">i") == 7, "correlation id"
    r.take(">i")  # throttle_time_ms
    assert r.take(">i") == 1
    assert r.string() == topic
    assert r.take(">i") == 1
    p, err, hw, _lso = r.take(">ihqq")
    assert p == partition
    n_aborted = r.take(">i")
    for _ in range(max(n_aborted, 0)):
        r.take(">qq")
    return err, hw, r.bytes() or b""


Batch = collections.namedtuple(
    "Batch", "codec base_offset last_offset count producer_id producer_epoch base_sequence"
)


def stored_batches(bootstrap, topic, partition):
    """The headers of every record batch of the partition, as served by Fetch
    v4 from offset 0 to the high watermark, as [Batch]. (Records are not decompressed: the clients under test
    check content; this checks what the broker keeps.)"""
    out = []
    offset = 0
    for _ in range(1000):
        err, hw, raw = fetch_v4(bootstrap, topic, partition, offset)
        assert err == 0, f"fetch {topic}/{partition}@{offset}: error code {err}"
        if offset >= hw:
            return out
        records = MemoryRecords(raw)
        while True:
            batch = records.next_batch()
            if batch is None:
                break
            if batch.next_offset <= offset:
                continue
            out.append(Batch(batch.compression_type, batch.base_offset, batch.last_offset, batch.records_count,
                             batch.producer_id, batch.producer_epoch, batch.base_sequence))
            offset = batch.next_offset
    raise AssertionError(f"reading {topic}/{partition} did not reach the high watermark")


def partition_served(bootstrap, topic, partition):
    """True when a Fetch of the partition answers without error."""
    return fetch_v4(bootstrap, topic, partition, 0)[0] == 0


def api_versions(bootstrap, timeout=10.0):
    """The broker's ApiVersions v0 answer: {api_key: (min, max)}."""
    host, port = bootstrap.rsplit(":", 1)
    msg = struct.pack(">hhi", 18, 0, 9) + _str("compat-api-versions")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", _recv_exact(s, 4))[0]
        r = _Reader(_recv_exact(s, size))
    assert r.take(">i") == 9, "correlation id"
    assert r.take(">h") == 0, "ApiVersions error"
    out = {}
    for _ in range(r.take(">i")):
        key, lo, hi = r.take(">hhh")
        out[key] = (lo, hi)
    return out


INIT_PRODUCER_ID = 22
