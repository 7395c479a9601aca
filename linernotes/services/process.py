"""Start, health-check and stop local server processes (llama.cpp, vLLM, ...).

A server runs in its own process group with its log in a file; `stop()`
terminates the whole group by PID (SIGTERM, then SIGKILL), so no worker is
left behind. A pid file next to the log lets `status`/`stop` find servers a
previous command started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerStartError(RuntimeError):
    pass


@dataclass
class ServerProcess:
    name: str
    cmd: list[str]
    host: str
    port: int
    log_path: Path
    health_path: str = "/health"
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    # A server started for one run must not outlive it, even when the run is
    # SIGKILLed (the kernel then sends SIGTERM to the server).
    die_with_parent: bool = True
    proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid_path(self) -> Path:
        return self.log_path.with_suffix(".pid")

    def start(self, timeout_s: float = 180.0) -> "ServerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(
            self.cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=self.cwd, start_new_session=True,  # own process group
            preexec_fn=_die_with_parent if self.die_with_parent else None,
        )
        log.close()
        self.pid_path.write_text(str(self.proc.pid))
        self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        url = self.base_url + self.health_path
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with code {self.proc.returncode} before it was ready; "
                    f"last log lines:\n{self.log_tail()}")
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise ServerStartError(f"{self.name} not ready at {url} after {timeout_s:.0f}s; "
                               f"last log lines:\n{self.log_tail()}")

    def healthy(self) -> bool:
        try:
            return httpx.get(self.base_url + self.health_path, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace_s: float = 10.0) -> None:
        if self.proc is None:
            return
        stop_group(self.proc.pid, grace_s)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None
        self.pid_path.unlink(missing_ok=True)

    def __enter__(self) -> "ServerProcess":
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child before exec: ask Linux for SIGTERM when the parent dies."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux/glibc: the server may outlive a killed parent
        pass


def stop_group(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the process group led by pid, SIGKILL it if it lingers."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:  # reap our own child, or its zombie keeps the group "alive"
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
