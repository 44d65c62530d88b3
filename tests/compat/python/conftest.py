"""Fixtures for the Python client-compatibility scenarios.

`bootstrap` starts one Vltava per test module (free port, temporary data
dir, ready when it prints `vltava listening on HOST:PORT`), or uses
$KAFKA_BOOTSTRAP when it is set. The broker is stopped with SIGTERM by PID;
its stderr is attached to the report of every failed test that used it.
"""

import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


HERE = Path(__file__).resolve().parent
READY = re.compile(rb"^vltava listening on (\S+:\d+)$", re.M)
START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 15


class Vltava:
    def __init__(self, binary):
        self.dir = Path(tempfile.mkdtemp(prefix="vltava-compat-py-"))
        self.log_path = self.dir / "stderr.log"
        args = [
            str(binary), "server",
            "--listen", "127.0.0.1:0",
            "--data-dir", str(self.dir / "data"),
            "--admin-listen", "off",
            "--override", "group.initial.rebalance.delay.ms=0",
        ]
        self.args = args
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        self.bootstrap = self._wait_ready()

    def _wait_ready(self):
        # The ready line is read from stdout as it comes: a real condition,
        # bounded by START_TIMEOUT_S.
        buf = b""
        deadline = time.monotonic() + START_TIMEOUT_S
        fd = self.proc.stdout.fileno()
        while True:
            m = READY.search(buf)
            if m:
                return m.group(1).decode()
            left = deadline - time.monotonic()
            if left <= 0:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"vltava did not print its ready line within {START_TIMEOUT_S} s\n{self.log_tail()}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    code = self.proc.wait()
                    raise RuntimeError(
                        f"vltava exited before it was ready (code {code}): {' '.join(self.args)}\n{self.log_tail()}"
                    )
                buf += chunk

    def log_tail(self, n=200):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        """SIGTERM by PID; returns the exit code (SIGKILL after STOP_TIMEOUT_S)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stdout.close()
        return self.proc.returncode


def _vltava_bin():
    b = os.environ.get("VLTAVA_BIN")
    return Path(b).resolve() if b else (HERE / ".." / ".." / ".." / "target" / "release" / "vltava").resolve()


@pytest.fixture(scope="module")
def broker(request):
    """The broker under test: a Vltava of this module's own, or $KAFKA_BOOTSTRAP."""
    external = os.environ.get("KAFKA_BOOTSTRAP")
    if external:
        yield None
        return
    binary = _vltava_bin()
    if not binary.exists():
        pytest.fail(f"no Vltava binary at {binary}: cargo build --release, or set VLTAVA_BIN / KAFKA_BOOTSTRAP")
    v = Vltava(binary)
    request.module._vltava = v
    failed_before = request.session.testsfailed
    yield v
    code = v.stop()
    if code != 0:
        print(f"\n# vltava (pid {v.proc.pid}) stopped with code {code}\n{v.log_tail()}")
        pytest.fail(f"vltava stopped with code {code} after SIGTERM")
    if request.session.testsfailed == failed_before:
        shutil.rmtree(v.dir, ignore_errors=True)
    else:
        print(f"\n# vltava data and stderr kept in {v.dir}")


@pytest.fixture(scope="module")
def bootstrap(broker):
    return os.environ["KAFKA_BOOTSTRAP"] if broker is None else broker.bootstrap


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    v = getattr(item.module, "_vltava", None)
    if rep.failed and v is not None:
        # "Captured stderr …": shown with the failure and written to the
        # JUnit XML's system-err (pytest.ini: junit_logging)
        rep.sections.append((f"Captured stderr vltava (pid {v.proc.pid}, {v.log_path})", v.log_tail()))
