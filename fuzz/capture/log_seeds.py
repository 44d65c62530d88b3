#!/usr/bin/env python3
"""Builds the record_batch and log_recovery seeds from a data directory that
a broker wrote while real clients ran through the capturing proxy.

usage: log_seeds.py DATA_DIR OUT_DIR (OUT_DIR gets record_batch/ and log_recovery/)
"""

import os
import struct
import sys

data_dir, out_dir = sys.argv[1], sys.argv[2]
os.makedirs(os.path.join(out_dir, "record_batch"), exist_ok=True)
os.makedirs(os.path.join(out_dir, "log_recovery"), exist_ok=True)


def batches(log):
    """(position, size, base offset, last offset, max timestamp) of each batch."""
    pos, out = 0, []
    while len(log) - pos >= 61:
        base, length = struct.unpack_from(">qi", log, pos)
        delta = struct.unpack_from(">i", log, pos + 23)[0]
        max_ts = struct.unpack_from(">q", log, pos + 35)[0]
        out.append((pos, 12 + length, base, base + delta, max_ts))
        pos += 12 + length
    return out


def indexes(log, base):
    """An offset index and a time index with an entry for every batch."""
    index, time_index = b"", b""
    for pos, _, _, last, max_ts in batches(log):
        index += struct.pack(">ii", last - base, pos)
        time_index += struct.pack(">qi", max_ts, last - base)
    return index, time_index


def segment(base_gap, log, index=None, time_index=None):
    absent = 0xFFFF
    return (
        struct.pack(
            ">HIHH",
            base_gap,
            len(log),
            absent if index is None else len(index),
            absent if time_index is None else len(time_index),
        )
        + log
        + (index or b"")
        + (time_index or b"")
    )


def write(kind, name, data):
    with open(os.path.join(out_dir, kind, name), "wb") as f:
        f.write(data)


logs = []
for part in sorted(os.listdir(data_dir)):
    path = os.path.join(data_dir, part, "00000000000000000000.log")
    if os.path.isfile(path) and os.path.getsize(path) > 0:
        with open(path, "rb") as f:
            logs.append((part, f.read()))
# One partition of each kind: user topics, offsets, transaction state.
chosen, kinds = [], set()
for part, log in logs:
    kind = part.rsplit("-", 1)[0].split("-")[0]
    if kind not in kinds or (kind not in ("__consumer_offsets", "__transaction_state") and len(chosen) < 12):
        kinds.add(kind)
        chosen.append((part, log))

for part, log in chosen:
    # record_batch: the batches as a producer sent them (base offsets are
    # not covered by the CRC), under two log configurations.
    write("record_batch", f"{part}-producer", b"\x00" + log)
    write("record_batch", f"{part}-compact-gzip", bytes([0x01 | (2 << 3)]) + log)
    # log_recovery: the whole segment scanned, no indexes.
    write("log_recovery", f"{part}-scan", b"\x00" + segment(0, log))
    found = batches(log)
    if len(found) >= 2:
        # Two segments split at a batch boundary, with full indexes; the
        # recovery point at the second, so the first's indexes are checked.
        split = found[len(found) // 2]
        first, second = log[: split[0]], log[split[0]:]
        i1, t1 = indexes(first, 0)
        i2, t2 = indexes(second, split[2])
        body = segment(0, first, i1, t1) + segment(split[2], second, i2, t2)
        write("log_recovery", f"{part}-two-segments", bytes([0x01 | 0x04 | (1 << 3)]) + body)
        # The same scanned, with the second segment's last batch torn.
        torn = segment(0, first) + segment(split[2], second[:-7])
        write("log_recovery", f"{part}-torn", bytes([0x01]) + torn)
