// Shared helpers for the compatibility scenarios: start/stop the broker under
// test, unique names, child-process programs, a group-less reader built on
// kafkajs's own protocol code, and a hard per-scenario timeout.
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require('kafkajs');

export const COMPAT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = resolve(COMPAT_DIR, '..', '..');
/** The brokers' `default.replication.factor` (cluster.sh runs with 3). */
export const REPLICATION_FACTOR = Number(process.env.KAFKA_REPLICATION_FACTOR ?? 1);
/** The brokers' `min.insync.replicas` (cluster.sh runs with 2). */
export const MIN_INSYNC_REPLICAS = process.env.KAFKA_MIN_INSYNC_REPLICAS ?? '1';

// --- the broker -------------------------------------------------------------

// Settings tried in order of preference: the first one the broker accepts is
// used. group.initial.rebalance.delay.ms is refused by Vltava until consumer
// groups land; then it is accepted and groups form without Kafka's 3 s delay.
const VLTAVA_OVERRIDES = [['group.initial.rebalance.delay.ms=0'], []];

/**
 * Starts the broker under test, or uses KAFKA_BOOTSTRAP when it is set.
 * Returns { bootstrap, kind, stop(), logTail() }.
 */
export async function startBroker() {
  if (process.env.KAFKA_BOOTSTRAP) {
    return {
      bootstrap: process.env.KAFKA_BOOTSTRAP,
      kind: 'external',
      stop: async () => {},
      // An external broker is not ours to restart.
      restart: async () => false,
      logTail: () => '',
    };
  }
  const bin = process.env.VLTAVA_BIN
    ? resolve(process.env.VLTAVA_BIN)
    : join(REPO_DIR, 'target', 'release', 'vltava');
  if (!existsSync(bin)) {
    throw new Error(`Vltava binary not found at ${bin}: build it with cargo build --release or set VLTAVA_BIN`);
  }
  let lastError;
  for (const overrides of VLTAVA_OVERRIDES) {
    try {
      return await startVltava(bin, overrides);
    } catch (e) {
      lastError = e;
      if (!e.refusedAtStart) throw e;
    }
  }
  throw lastError;
}

async function startVltava(bin, overrides) {
  const dir = mkdtempSync(join(tmpdir(), 'vltava-compat-'));
  const dataDir = join(dir, 'data');
  const logPath = join(dir, 'stderr.log');
  const logTail = (n = 80) => {
    try {
      return readFileSync(logPath, 'utf8').split('\n').slice(-n).join('\n');
    } catch {
      return '';
    }
  };
  let { child, exited, bootstrap } = await spawnVltava(bin, overrides, dataDir, logPath, logTail);
  if (overrides.length) process.stderr.write(`# vltava accepted --override ${overrides.join(' ')}\n`);
  let stopped = false;
  /** SIGTERM by PID, bounded wait; returns the exit code (null after SIGKILL). */
  const terminate = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    process.kill(child.pid, 'SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const { code, signal } = await exited;
    clearTimeout(killer);
    if (code !== 0) process.stderr.write(`# vltava (pid ${child.pid}) stopped with code ${code} signal ${signal}\n`);
    return code;
  };
  const broker = {
    bootstrap,
    kind: 'vltava',
    pid: child.pid,
    logPath,
    logTail,
    overrides,
    /** Stops the broker cleanly and starts it again on the same data dir (a new port). */
    async restart() {
      const code = await terminate();
      if (code !== 0) throw new Error(`vltava exited with ${code} on SIGTERM\n${logTail()}`);
      ({ child, exited, bootstrap } = await spawnVltava(bin, overrides, dataDir, logPath, logTail));
      broker.bootstrap = bootstrap;
      broker.pid = child.pid;
      return true;
    },
    async stop({ printLog = false } = {}) {
      if (stopped) return;
      stopped = true;
      if ((await terminate()) !== 0) printLog = true;
      if (printLog) {
        process.stderr.write(`# ---- vltava stderr (${logPath}) ----\n${logTail(200)}\n# ----\n`);
      } else {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  return broker;
}

/** Starts `vltava server` on `dataDir` and waits for its ready line. */
async function spawnVltava(bin, overrides, dataDir, logPath, logTail) {
  const errFd = openSync(logPath, 'a');
  const args = ['server', '--listen', '127.0.0.1:0', '--data-dir', dataDir];
  for (const o of overrides) args.push('--override', o);
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', errFd] });
  closeSync(errFd);
  const exited = new Promise(res => child.once('exit', (code, signal) => res({ code, signal })));
  const bootstrap = await new Promise((res, rej) => {
    let buf = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`vltava did not print its ready line within 20 s\n${logTail()}`));
    }, 20_000);
    child.stdout.on('data', d => {
      buf += d;
      const m = /^vltava listening on (\S+:\d+)$/m.exec(buf);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      const err = new Error(
        `vltava exited before it was ready (code ${code}, signal ${signal}) with ${args.join(' ')}\n${logTail()}`,
      );
      err.refusedAtStart = overrides.length > 0;
      rej(err);
    });
  });
  child.stdout.resume();
  return { child, exited, bootstrap };
}

// --- scenarios ----------------------------------------------------------------

let anyFailed = false;
export const failed = () => anyFailed;

/**
 * A scenario: a node:test test with a hard timeout that fails it (the
 * runner's own timeout is a backstop a little later).
 */
export function scenario(name, timeoutMs, fn) {
  test(name, { timeout: timeoutMs + 10_000 }, async t => {
    let timer;
    const deadline = new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Error(`scenario timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([fn(t), deadline]);
    } catch (e) {
      anyFailed = true;
      throw e;
    } finally {
      clearTimeout(timer);
    }
  });
}

let counter = 0;
const runId = `${Date.now().toString(36)}-${process.pid}`;
/** A topic or group name no other scenario or run uses. */
export const uniq = base => `${base}-${runId}-${++counter}`;

export function client(bootstrap, clientId = 'compat-suite') {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    retry: { retries: 8 },
  });
}

export const sleep = ms => new Promise(r => setTimeout(r, ms));

/** Polls fn until it returns a truthy value or the time is up. */
export async function until(fn, { timeoutMs = 15_000, intervalMs = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${last?.stack ?? JSON.stringify(last)}`);
    await sleep(intervalMs);
  }
}

// --- reading partitions without a consumer group ------------------------------

/**
 * Reads a partition from `fromOffset` up to its high watermark with plain
 * Fetch requests, using kafkajs's own cluster, broker and record decoders
 * (kafkajs's public consumer always needs a group; this does not). Returns
 * [{ offset, key, value, headers, timestamp }] with offset as a number, key
 * and value as Buffers (or null), header values as Buffers.
 */
export async function readPartition(kafka, topic, partition, { fromOffset = 0 } = {}) {
  const createCluster = Object.getOwnPropertySymbols(kafka).find(s => String(s).includes('createCluster'));
  const cluster = kafka[createCluster]({});
  await cluster.connect();
  try {
    await cluster.addTargetTopic(topic);
    await cluster.refreshMetadata();
    const meta = cluster.findTopicPartitionMetadata(topic).find(p => p.partitionId === partition);
    if (!meta) throw new Error(`no partition ${partition} in metadata of ${topic}`);
    const broker = await cluster.findBroker({ nodeId: meta.leader });
    const out = [];
    let offset = fromOffset;
    for (let round = 0; round < 10_000; round++) {
      const res = await broker.fetch({
        maxWaitTime: 50,
        minBytes: 1,
        maxBytes: 8 << 20,
        isolationLevel: 1,
        topics: [{ topic, partitions: [{ partition, fetchOffset: String(offset), maxBytes: 4 << 20 }] }],
      });
      const p = res.responses[0].partitions[0];
      if (p.errorCode) throw new Error(`fetch ${topic}/${partition}@${offset}: error code ${p.errorCode}`);
      const hw = Number(p.highWatermark);
      for (const m of p.messages) {
        const o = Number(m.offset);
        if (o < offset || m.isControlRecord) continue;
        out.push({ offset: o, key: m.key, value: m.value, headers: m.headers, timestamp: m.timestamp });
        offset = o + 1;
      }
      if (offset >= hw) return out;
      if (p.messages.length === 0) await sleep(20);
    }
    throw new Error(`reading ${topic}/${partition} did not reach the high watermark`);
  } finally {
    await cluster.disconnect();
  }
}

// --- client programs run as child processes ------------------------------------

const children = new Set();

/**
 * Runs a program (e.g. a seed) as a child process. stdout/stderr are
 * collected; `waitFor(re)` waits for stdout to match; `stop()` sends SIGTERM
 * and waits for the exit; `output()` is stdout without kafkajs's own INFO log
 * lines (JSON objects kafkajs's default console logger prints on stdout).
 */
export function program(cmd, args, { env = {}, cwd = COMPAT_DIR } = {}) {
  const child = spawn(cmd, args, {
    cwd,
    env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  const waiters = [];
  child.stdout.setEncoding('utf8').on('data', d => {
    stdout += d;
    for (const w of [...waiters]) w();
  });
  child.stderr.setEncoding('utf8').on('data', d => {
    stderr += d;
  });
  const exited = new Promise(res =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      for (const w of [...waiters]) w();
      res({ code, signal });
    }),
  );
  const output = () => stripKafkajsLogs(stdout);
  const describe = () =>
    `${cmd} ${args.join(' ')}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}\n---`;
  return {
    child,
    exited,
    output,
    stdout: () => stdout,
    stderr: () => stderr,
    describe,
    write: s => child.stdin.write(s),
    end: () => child.stdin.end(),
    waitFor(pred, timeoutMs = 30_000) {
      const test = typeof pred === 'function' ? pred : () => pred.test(output());
      return new Promise((res, rej) => {
        const check = () => {
          if (test()) {
            cleanup();
            res();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            cleanup();
            rej(new Error(`program exited before expected output\n${describe()}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          rej(new Error(`timed out after ${timeoutMs} ms waiting for output\n${describe()}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          const i = waiters.indexOf(check);
          if (i >= 0) waiters.splice(i, 1);
        };
        waiters.push(check);
        check();
      });
    },
    async stop(timeoutMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(killer);
      }
      return exited;
    },
  };
}

/** Kills every child program still running (for after() hooks). */
export async function killChildren() {
  await Promise.all(
    [...children].map(c => {
      c.kill('SIGKILL');
      return new Promise(r => c.once('exit', r));
    }),
  );
}

export function stripKafkajsLogs(text) {
  return text.replace(/\{"level":"(?:INFO|DEBUG)","timestamp":"[^"\n]*","logger":"kafkajs"[^\n]*\}\n/g, '');
}

export const TSX = join(COMPAT_DIR, 'node_modules', '.bin', 'tsx');

/**
 * Creates a topic and waits until every partition answers a Fetch without
 * error. Apache Kafka's CreateTopics (and kafkajs's waitForLeaders) can
 * return before the partition is served: a produce right after then gets
 * NOT_LEADER_OR_FOLLOWER and kafkajs's non-idempotent retry duplicates the
 * partitions of the request that did succeed. Returns createTopics' answer.
 */
export async function createTopic(admin, kafka, topic, numPartitions, extra = {}) {
  const created = await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions, ...extra }] });
  await until(
    async () => {
      for (let p = 0; p < numPartitions; p++) await readPartition(kafka, topic, p);
      return true;
    },
    { what: `every partition of ${topic} served`, timeoutMs: 30_000, intervalMs: 200 },
  );
  return created;
}
export const TSC = join(COMPAT_DIR, 'node_modules', '.bin', 'tsc');
