#!/usr/bin/env python3
"""Writes BENCHMARKS.md and the chart from bench/results (made by bench/run.sh).

usage: report.py RESULTS_DIR BENCHMARKS.md CHART.png
"""
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SYSTEMS = ["kafka", "vltava-fsync", "vltava-pagecache"]
LABEL = {"kafka": "Kafka", "vltava-fsync": "Vltava (fsync)", "vltava-pagecache": "Vltava (page-cache)"}


def load_env(path):
    d = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                d[k] = v
    return d


def num(d, k):
    try:
        return float(d[k])
    except (KeyError, ValueError):
        return None


# (key, label, higher_is_better, goal on vltava/kafka or None, per-record scale)
ROWS = [
    ("produce_msgs", "1. produce, max rate: msgs/s", True, 2.0),
    ("produce_steady_msgs", "1. produce: steady msgs/s (median 5 s interval, first left out)", True, None),
    ("produce_mb_s", "1. produce: MB/s", True, None),
    ("produce_lat_p99_ms", "1. produce at max rate: p99 ack latency, ms", False, None),
    ("produce_broker_cpu_us", "1. produce: broker CPU µs per record", False, None),
    ("produce_client_cpu_us", "1. produce: client (producer JVM) CPU µs per record", False, None),
    ("produce_client_busy_pct", "1. produce: client's core busy, % (CPU s / wall s of the tool)", None, None),
    ("consume_fetch_msgs", "2. consume: msgs/s (fetch time, without group join)", True, 2.0),
    ("consume_msgs", "2. consume: msgs/s (whole run, with group join)", True, None),
    ("consume_broker_cpu_us", "2. consume: broker CPU µs per record", False, None),
    ("consume_client_cpu_us", "2. consume: client (consumer JVM) CPU µs per record", False, None),
    ("consume_client_busy_pct", "2. consume: client's core busy, %", None, None),
    ("rk_produce_msgs", "1-2. librdkafka (vltava bench) produce, max rate: msgs/s", True, 2.0),
    ("rk_produce_lat_p99_ms", "1-2. librdkafka produce: p99 ack latency, ms", False, None),
    ("rk_produce_broker_cpu_us", "1-2. librdkafka produce: broker CPU µs per record", False, None),
    ("rk_produce_client_cpu_us", "1-2. librdkafka produce: client CPU µs per record", False, None),
    ("rk_produce_client_busy_pct", "1-2. librdkafka produce: client's core busy, %", None, None),
    ("rk_consume_msgs", "1-2. librdkafka (vltava bench) consume: msgs/s", True, 2.0),
    ("rk_consume_broker_cpu_us", "1-2. librdkafka consume: broker CPU µs per record", False, None),
    ("rk_consume_client_cpu_us", "1-2. librdkafka consume: client CPU µs per record", False, None),
    ("rk_consume_client_busy_pct", "1-2. librdkafka consume: client's core busy, %", None, None),
    ("lat_rate", "3. fixed rate for latency: msgs/s offered", None, None),
    ("lat_dirty_mb", "3. fixed rate: unwritten page cache before it, MiB (written with `sync` first)", None, None),
    ("lat_msgs", "3. fixed rate: msgs/s achieved", True, None),
    ("lat_lat_p50_ms", "3. produce-ack p50, ms (steady state: the first 5 s left out)", False, None),
    ("lat_lat_p99_ms", "3. produce-ack p99, ms (steady state)", False, 0.2),
    ("lat_lat_p999_ms", "3. produce-ack p99.9, ms (steady state)", False, None),
    ("lat_all_lat_p99_ms", "3. produce-ack p99, ms (whole run, client warm-up included)", False, None),
    ("lat_broker_p50_ms", "3. Vltava's own Produce handling p50, ms (≤ its /metrics bucket, whole run)", False, None),
    ("lat_broker_p99_ms", "3. Vltava's own Produce handling p99, ms (≤ its /metrics bucket, whole run)", False, None),
    ("lat_fsync_p50_ms", "3. Vltava's fsync of one partition p50, ms (≤ its /metrics bucket)", False, None),
    ("lat_fsync_p99_ms", "3. Vltava's fsync of one partition p99, ms (≤ its /metrics bucket)", False, None),
    ("e2e_p50_ms", "3. produce-to-consume p50, ms (EndToEndLatency, 1 in flight)", False, None),
    ("e2e_p99_ms", "3. produce-to-consume p99, ms", False, None),
    ("e2e_p999_ms", "3. produce-to-consume p99.9, ms", False, None),
    ("rk_lat_rate", "3. librdkafka fixed rate: msgs/s offered", None, None),
    ("rk_lat_dirty_mb", "3. librdkafka fixed rate: unwritten page cache before it, MiB (`sync` first)", None, None),
    ("rk_lat_msgs", "3. librdkafka fixed rate: msgs/s achieved", True, None),
    ("rk_lat_lat_p50_ms", "3. librdkafka produce-ack p50, ms", False, None),
    ("rk_lat_lat_p99_ms", "3. librdkafka produce-ack p99, ms", False, 0.2),
    ("rk_lat_lat_p999_ms", "3. librdkafka produce-ack p99.9, ms", False, None),
    ("rk_e2e_lat_p50_ms", "3. librdkafka produce-to-consume p50, ms (same rate)", False, None),
    ("rk_e2e_lat_p99_ms", "3. librdkafka produce-to-consume p99, ms", False, None),
    ("rk_e2e_lat_p999_ms", "3. librdkafka produce-to-consume p99.9, ms", False, None),
    ("many_create_s", "4. create 1 topic x 1,000 partitions: s to all led", False, None),
    ("many_msgs", "4. 1,000 partitions: msgs/s achieved", True, None),
    ("many_lat_p99_ms", "4. 1,000 partitions: produce-ack p99, ms", False, None),
    ("metadata_p50_ms", "4. Metadata (1,000-partition topic) p50, ms", False, None),
    ("metadata_p99_ms", "4. Metadata p99, ms", False, None),
    ("idle_rss_mb", "5. idle RSS after start, MiB", False, 0.05),
    ("peak_rss_mb", "5. peak RSS (VmHWM) after 1., MiB", False, None),
    ("ready_s", "5. start to first Metadata, s", False, 0.05),
    ("recovery_mb", "6. log size before kill -9, MiB", None, None),
    ("fill_msgs", "6. fill before kill -9 (acks=all, max rate, brokers warm): msgs/s", True, None),
    ("fill_steady_msgs", "6. fill: steady msgs/s (median 5 s interval)", True, None),
    ("fill_lat_p99_ms", "6. fill: p99 ack latency, ms", False, None),
    ("recovery_disk_mb", "6. data dir size at kill -9, MiB", None, None),
    ("recovery_ready_s", "6. restart after kill -9 to all partitions led, s", False, None),
    ("cpu_total_s", "broker CPU s, start to end of 4.", False, None),
    ("profile_msgs", "profile run (under perf record): produce msgs/s", True, None),
    ("profile_broker_busy_pct", "profile run: broker CPU busy, % of one core", None, None),
]


def derive(r, d):
    # the 6. fill run (acks=all, max rate, after every other phase: warm JIT for Kafka)
    fill = os.path.join(d, "fill.out")
    if os.path.exists(fill) and "fill_msgs" not in r:
        for line in open(fill):
            if "records sent" in line and "50th" in line:
                r["fill_msgs"] = line.split(",")[1].split()[0]
                r["fill_lat_p99_ms"] = line.split(",")[6].split()[0]
    # steady state: the median of ProducerPerformance's 5 s interval rates, the first interval
    # (client JVM warm-up) left out
    for name in ("produce", "fill"):
        path = os.path.join(d, f"{name}.out")
        if not os.path.exists(path):
            continue
        rates = [float(line.split(",")[1].split()[0]) for line in open(path)
                 if "records sent" in line and "50th" not in line]
        if len(rates) >= 3:
            rates = sorted(rates[1:])
            r[f"{name}_steady_msgs"] = f"{rates[len(rates) // 2]:.0f}"
    # the client's core: CPU seconds over wall seconds of the tool's process ("%U %S %e")
    for phase, name in (("produce", "produce"), ("consume", "consume"),
                        ("rk_produce", "rk-produce"), ("rk_consume", "rk-consume")):
        path = os.path.join(d, f"{name}.time")
        if os.path.exists(path):
            f = open(path).read().split()
            if len(f) >= 3 and float(f[2]) > 0:
                r[f"{phase}_client_busy_pct"] = f"{(float(f[0]) + float(f[1])) / float(f[2]) * 100:.0f}"
    n = num(r, "records")
    for phase in ("produce", "consume", "rk_produce", "rk_consume"):
        for who in ("broker", "client"):
            c = num(r, f"{phase}_{who}_cpu_s")
            if c is not None and n:
                r[f"{phase}_{who}_cpu_us"] = f"{c / n * 1e6:.1f}"
    return r


def fmt(v):
    if v is None:
        return "–"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def ratio(v, k):
    if v is None or k is None or k == 0:
        return None
    return v / k


def main():
    res_dir, out_md, out_png = sys.argv[1:4]
    machine = load_env(os.path.join(res_dir, "machine.env"))
    res = {s: derive(load_env(os.path.join(res_dir, s, "results.env")), os.path.join(res_dir, s)) for s in SYSTEMS}
    have = [s for s in SYSTEMS if res[s]]
    k = res.get("kafka", {})

    lines = []
    w = lines.append
    w("# Benchmarks: Vltava vs Apache Kafka on one machine")
    w("")
    w("Written by `bench/run.sh` (do not edit by hand; the prose under \"Where the time goes\" "
      "comes from `bench/analysis.md`). How to run it: README, section *Benchmarks*.")
    w("")
    w(f"- Run: `BENCH_SCALE={machine.get('scale')}` on {machine.get('date')}, Vltava at "
      f"`{machine.get('vltava_commit')}`, Apache Kafka {machine.get('kafka_version')} "
      f"(KRaft, one combined node, shipped `server.properties` settings, "
      f"`kafka-server-start.sh` JVM defaults: 1 GiB heap, G1).")
    w(f"- Machine: {machine.get('cores')} cores, {machine.get('cpu_model')}, "
      f"{machine.get('mem_gib')} GiB, {machine.get('kernel')}, disk {machine.get('disk')}, {machine.get('java')}.")
    w(f"- The data disk's cost of one 16 KiB write + fdatasync (200 tries, ms): {machine.get('fsync_16k_ms')}.")
    mbs = num(machine, "disk_write_mb_s")
    if mbs:
        w(f"- The data disk's sequential write rate (1 GiB in 1 MiB writes, then fdatasync): {mbs:,.0f} MB/s, "
          f"≈ {mbs * 1e6 / 1100:,.0f} records/s of 1 KiB (≈ 1,100 bytes each on disk): the ceiling for a broker "
          "that has every acknowledged record on disk, whatever its CPU.")
    pinned = machine.get("pinned") == "1"
    if pinned:
        irq = machine.get("disk_irq_cpu", "")
        where = (" (the CPU that takes the data disk's interrupts, so each broker pays for its own I/O)"
                 if irq and irq == machine.get("broker_cpu") else "")
        w(f"- Pinning: broker on CPU {machine.get('broker_cpu', '0')}{where}, every client on CPU "
          f"{machine.get('client_cpu', '1')} (`taskset`).")
    else:
        w("- Pinning: none.")
    w(f"- Client: Apache Kafka's own perf tools (kafka-tools {machine.get('tools_version')}: "
      "ProducerPerformance, ConsumerPerformance, EndToEndLatency), the same JVM, jar and settings "
      "for every broker: 1 KiB values, no key, the producer's defaults (idempotent, `acks=all`, "
      "batch.size 16384, linger.ms 5, no compression); and librdkafka through `vltava bench` "
      "(rows marked librdkafka: `acks=all`, linger.ms 5, librdkafka's defaults otherwise).")
    w("- Durability: **Kafka acknowledges `acks=all` from the page cache** (it never fsyncs on the produce path by "
      "default); **Vltava (fsync)** is Vltava's default, which fsyncs before acknowledging `acks=all` "
      "(group commit); **Vltava (page-cache)** is `--durability page-cache`, Kafka's behaviour.")
    w("- Ratio = Vltava / Kafka. Goals are stated on that ratio.")
    w("- Load averages (1, 5, 15 min) at the start of each phase. The broker and its client keep both cores "
      "busy themselves (≈ 2–3); much more than that means other work shared the machine and the figures are noisy:")
    w("")
    phases = ["load_start", "load_produce", "load_consume", "load_latency", "load_many", "load_recovery", "load_end"]
    w("| system | " + " | ".join(p[5:] for p in phases) + " |")
    w("|---|" + "---|" * len(phases))
    for s in have:
        w(f"| {LABEL[s]} | " + " | ".join(res[s].get(p, "–") for p in phases) + " |")
    w("")
    w("## Results")
    w("")
    hdr = "| metric | Kafka | Vltava (fsync) | ratio | Vltava (page-cache) | ratio | goal (ratio) |"
    w(hdr)
    w("|---|---:|---:|---:|---:|---:|---|")
    goals = []
    for key, label, hib, goal in ROWS:
        kv = num(k, key)
        fv = num(res["vltava-fsync"], key)
        pv = num(res["vltava-pagecache"], key)
        rf, rp = ratio(fv, kv), ratio(pv, kv)
        g = ""
        if goal is not None:
            g = (f"≥ {goal:g}×" if hib else f"≤ {goal:g}×")
            met = None
            if rf is not None:
                met = rf >= goal if hib else rf <= goal
            metp = None
            if rp is not None:
                metp = rp >= goal if hib else rp <= goal
            goals.append((label, g, rf, met, rp, metp))
        w(f"| {label} | {fmt(kv)} | {fmt(fv)} | {fmt(rf) + '×' if rf is not None else '–'} | "
          f"{fmt(pv)} | {fmt(rp) + '×' if rp is not None else '–'} | {g} |")
    w("")
    w("Rates are for the 8-partition topic unless stated. Consume rate: ConsumerPerformance's "
      "`fetch.nMsg.sec` (time after the group join) and `nMsg.sec` (whole run). "
      "EndToEndLatency sends one record and waits until its consumer sees it before sending the next.")
    w("")
    w("## Goals")
    w("")
    w("| goal | target | Vltava (fsync) | met | Vltava (page-cache) | met |")
    w("|---|---|---:|---|---:|---|")
    yn = {True: "yes", False: "**no**", None: "–"}
    for label, g, rf, met, rp, metp in goals:
        w(f"| {label} | {g} | {fmt(rf) if rf is not None else '–'}× | {yn[met]} | "
          f"{fmt(rp) if rp is not None else '–'}× | {yn[metp]} |")
    w("")
    w("![Vltava vs Kafka](bench/chart.png)")
    w("")
    w("## Where the time goes")
    w("")
    analysis = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
    if os.path.exists(analysis):
        w(open(analysis).read().strip())
        w("")
    for s in ("vltava-fsync", "vltava-pagecache"):
        p = os.path.join(res_dir, s, "perf-self.txt")
        if os.path.exists(p) and os.path.getsize(p) > 0:
            w(f"### `perf record -g` of {LABEL[s]} during an extra max-rate produce run: self time by symbol")
            w("")
            w("```")
            w(open(p).read().rstrip())
            w("```")
            w("")
        p = os.path.join(res_dir, s, "perf-children.txt")
        if os.path.exists(p) and os.path.getsize(p) > 0:
            w(f"### {LABEL[s]}: time including callees (≥ 5 %)")
            w("")
            w("```")
            w(open(p).read().rstrip())
            w("```")
            w("")
        p = os.path.join(res_dir, s, "perf-trace.txt")
        if os.path.exists(p) and os.path.getsize(p) > 0:
            w(f"### {LABEL[s]}: system calls by thread (`perf trace -s`, a separate produce run)")
            w("")
            w("```")
            w("\n".join(l.rstrip() for l in open(p) if l.strip()))
            w("```")
            w("")
    open(out_md, "w").write("\n".join(lines) + "\n")

    # chart: advantage factor (>1 = Vltava better), log scale, goal markers
    items = []
    for key, label, hib, goal in ROWS:
        if hib is None:
            continue
        kv = num(k, key)
        vals = []
        for s in ("vltava-fsync", "vltava-pagecache"):
            v = num(res[s], key)
            if v and kv:
                vals.append(v / kv if hib else kv / v)
            else:
                vals.append(None)
        if any(x is not None for x in vals):
            gl = None if goal is None else (goal if hib else 1 / goal)
            items.append((label, vals, gl))
    if not items:
        return
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(items) + 1.8))
    y = list(range(len(items)))
    hgt = 0.38
    for j, (name, color) in enumerate([("Vltava (fsync)", "#1f77b4"), ("Vltava (page-cache)", "#ff7f0e")]):
        xs = [it[1][j] if it[1][j] is not None else 1 for it in items]
        # bars grow from 1 (parity with Kafka): right = Vltava better, left = worse
        ax.barh([i + (j - 0.5) * hgt for i in y], [x - 1 for x in xs], height=hgt, color=color,
                label=name, left=1)
    for i, it in enumerate(items):
        if it[2] is not None:
            ax.plot([it[2]], [i], marker="|", markersize=18, color="red", mew=2)
    ax.plot([], [], marker="|", color="red", linestyle="none", markersize=12, mew=2, label="goal")
    ax.axvline(1, color="black", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y)
    ax.set_yticklabels([it[0] for it in items], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("advantage over Kafka (×, log scale; > 1 = Vltava better; Kafka = 1)")
    ax.set_title(f"Vltava vs Apache Kafka {machine.get('kafka_version')}, BENCH_SCALE={machine.get('scale')}, "
                 f"{machine.get('cores')} shared cores", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)


if __name__ == "__main__":
    main()
