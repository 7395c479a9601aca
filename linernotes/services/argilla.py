"""Argilla (expert labeling UI + API) as a local stack: redis + osmem + argilla-server.

Skip all of this when you already have an Argilla: set `ARGILLA_API_URL` and
`ARGILLA_API_KEY` (a Hugging Face Space, a company server) and use `client()`
(or `argilla.Argilla()` directly) with `curation.labeling`; `up()` is then
not needed and nothing is installed.

Local stack (no Docker, no Elasticsearch on this machine):

* `install()` builds `paths.services_dir()/"argilla"`, a venv with
  `argilla-server==2.8.0`, `click<8.2` (argilla-server pins typer<0.10, which
  breaks with newer click) and `osmem-server==0.1.6` (a Go binary, in memory,
  speaking the OpenSearch API). Redis comes from Debian
  (`apt-get install -y redis-server`) when `redis-server` is not on PATH.
  Idempotent: a stamp file marks success, a lock serialises callers.
* `up()` starts on 127.0.0.1 with free ports: redis-server (no persistence),
  osmem-server, `argilla_server database migrate` (SQLite under
  `paths.home()/"argilla"`), users (owner `argilla`, annotators `annotator`
  and `annotator2`, with API keys), the API server and its rq background
  worker (`python -m argilla_server worker`). The server runs through
  `linernotes.services.argilla_launch`, which swaps in the search engine of
  `linernotes.services.argilla_engine` (osmem lacks scripted updates; see
  there). The search index is in memory: `down()` + `up()` keeps the SQLite
  data, and the launcher re-indexes it into the fresh engine on start.
* A state file (`paths.home()/"argilla"/"stack.json"`: pids, ports, URL,
  keys) lets `status()` and `down()` work from another process.

Secrets: keys and passwords never go on a command line (the user setup reaches
the launcher on stdin) nor into logs (masked, also in what argilla-server
echoes); `credentials.json` and `stack.json` are created 0600 atomically
(`linernotes.services.credentials.write_private`). `status()` is the raw state
for code; `status_report()` (what `linernotes services status argilla` prints)
masks keys and passwords unless asked (`--show-secrets`).

What the local engine cannot do: kNN / vector similarity search ("find
similar records" in the UI), and the search is osmem's (fine for filters,
sorting, simple text queries; not Elasticsearch's scoring).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from linernotes import paths
from linernotes.services.credentials import mask, mask_secrets, read_private, write_private
from linernotes.services.process import ServerProcess, free_port, stop_group
from linernotes.services.venv import prepare_venv, run_streaming

ARGILLA_SERVER_VERSION = "2.8.0"
OSMEM_VERSION = "0.1.6"
SPEC = [f"argilla-server=={ARGILLA_SERVER_VERSION}", "click<8.2", f"osmem-server=={OSMEM_VERSION}"]
HOST = "127.0.0.1"
OWNER = "argilla"
ANNOTATORS = ("annotator", "annotator2")


def _log(msg: str) -> None:
    print(f"[argilla] {msg}", flush=True)


def venv_dir() -> Path:
    return paths.services_dir() / "argilla"


def venv_python() -> Path:
    return venv_dir() / "bin" / "python"


def data_dir() -> Path:
    return paths.sub("argilla")


def state_path() -> Path:
    return data_dir() / "stack.json"


def _stamp() -> Path:
    digest = hashlib.sha256(" ".join(SPEC).encode()).hexdigest()[:12]
    return venv_dir() / f".installed-{digest}"


def is_installed() -> bool:
    return _stamp().exists() and venv_python().exists() and redis_binary() is not None


def redis_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)


def osmem_binary() -> Path:
    """The Go binary bundled in the osmem-server wheel (no console script)."""
    found = sorted((venv_dir() / "lib").glob("python3*/site-packages/osmem_server/bin/osmem-server"))
    return found[0] if found else venv_dir() / "osmem-server-missing"


def _lock(name: str):
    return paths.file_lock(paths.services_dir() / f"{name}.lock")


def install_redis() -> str:
    """redis-server from Debian when it is not on PATH (needs root)."""
    found = redis_binary()
    if found:
        return found
    apt = ["apt-get"] if os.geteuid() == 0 else ["sudo", "-n", "apt-get"]
    _log("redis-server not on PATH: " + " ".join(apt + ["update"]))
    run_streaming(apt + ["update"])
    _log("installing Debian's redis-server: " + " ".join(apt + ["install", "-y", "redis-server"]))
    run_streaming(apt + ["install", "-y", "--no-install-recommends", "redis-server"],
         env={"DEBIAN_FRONTEND": "noninteractive"})
    found = redis_binary()
    if not found:
        raise RuntimeError("redis-server still not found after apt-get install")
    # Debian's package starts a system redis on 6379; ours runs on its own port.
    return found


def install(force: bool = False, base_python: str | None = None) -> Path:
    """Create (once) the Argilla venv and make sure redis-server exists. Idempotent."""
    with _lock("argilla"):
        if is_installed() and not force:
            _log(f"already installed in {venv_dir()}")
            return venv_dir()
        start = time.monotonic()
        install_redis()
        venv = venv_dir()
        py = prepare_venv(venv, force=force, base_python=base_python, log=_log)
        _log(f"pip install {' '.join(SPEC)} (1-3 min)")
        run_streaming([py, "-m", "pip", "install", "--quiet", "--progress-bar", "off", *SPEC])
        out = subprocess.run([py, "-c", "import argilla_server, click; from importlib.metadata import version as v; "
                              "print(v('argilla-server'), v('click'))"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"argilla venv does not import:\n{out.stderr[-3000:]}")
        if not osmem_binary().exists():
            raise RuntimeError(f"osmem-server binary missing at {osmem_binary()}")
        elapsed = time.monotonic() - start
        _stamp().write_text(f"argilla-server/click: {out.stdout.strip()}\ninstall_s: {elapsed:.0f}\n")
        _log(f"installed in {elapsed:.0f}s (argilla-server/click {out.stdout.strip()})")
        return venv


# --------------------------------------------------------------------------- stack

LAUNCHER = Path(__file__).with_name("argilla_launch.py")
ENV_URL, ENV_KEY = "ARGILLA_API_URL", "ARGILLA_API_KEY"


class _RedisProcess(ServerProcess):
    """redis-server: ready when it answers PING on its TCP port."""

    def _ping(self) -> bool:
        import socket
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                from linernotes.services.process import ServerStartError
                raise ServerStartError(f"redis exited ({self.proc.returncode}):\n{self.log_tail()}")
            if self._ping():
                return
            time.sleep(0.2)
        self.stop()
        from linernotes.services.process import ServerStartError
        raise ServerStartError(f"redis not answering on {self.port}:\n{self.log_tail()}")

    def healthy(self) -> bool:
        return self._ping()


class _WorkerProcess(ServerProcess):
    """The rq worker: no port; ready when alive for a few seconds and registered in redis."""

    def wait_ready(self, timeout_s: float) -> None:
        from linernotes.services.process import ServerStartError
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerStartError(f"rq worker exited ({self.proc.returncode}):\n{self.log_tail()}")
            if "Listening on" in self.log_tail(200) or "started with PID" in self.log_tail(200):
                return
            time.sleep(0.5)
        self.stop()
        raise ServerStartError(f"rq worker not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def healthy(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class ArgillaStack:
    """A running local Argilla: URL, API keys, and its processes (pids, ports)."""

    api_url: str
    owner_api_key: str
    annotator_api_keys: dict[str, str]          # username -> API key
    passwords: dict[str, str]                   # username -> password (UI login)
    pids: dict[str, int]                        # redis, osmem, worker, server
    ports: dict[str, int]
    started_at: float = 0.0
    start_s: float = 0.0
    detached: bool = False
    processes: dict = field(default_factory=dict, repr=False, compare=False)

    def to_json(self) -> dict:
        import dataclasses
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "processes"}

    def client(self, username: str | None = None):
        """An `argilla.Argilla` client as the owner, or as the given annotator."""
        import argilla as rg
        key = self.owner_api_key if username in (None, OWNER) else self.annotator_api_keys[username]
        return rg.Argilla(api_url=self.api_url, api_key=key, timeout=120)

    def down(self) -> None:
        down()


def client(api_url: str | None = None, api_key: str | None = None):
    """`argilla.Argilla` for $ARGILLA_API_URL/$ARGILLA_API_KEY (external server), else the local stack's owner."""
    import argilla as rg
    url, key = api_url or os.environ.get(ENV_URL), api_key or os.environ.get(ENV_KEY)
    if url and key:
        return rg.Argilla(api_url=url, api_key=key, timeout=120)
    st = status()
    if not st.get("running"):
        raise RuntimeError(f"no Argilla: set {ENV_URL}/{ENV_KEY} or start the local stack "
                           "(linernotes.services.argilla.up())")
    return rg.Argilla(api_url=st["api_url"], api_key=st["owner_api_key"], timeout=120)


def _credentials() -> dict:
    """API keys/passwords, generated once and kept next to the SQLite database (users persist there)."""
    path = credentials_path()
    if path.exists():
        return json.loads(read_private(path))
    users = {OWNER: "owner", **{a: "annotator" for a in ANNOTATORS}}
    creds = {u: {"role": role, "api_key": f"{u}.{secrets.token_urlsafe(24)}",
                 "password": secrets.token_urlsafe(12)} for u, role in users.items()}
    write_private(path, json.dumps(creds, indent=1))
    return creds


def credentials_path() -> Path:
    return data_dir() / "credentials.json"


def setup_batch(creds: dict, workspace: str) -> list[list[str]]:
    """argilla-server CLI commands that prepare the database (they hold the
    passwords and keys: send them on stdin, `setup_argv` carries none)."""
    setup = [["database", "migrate"]]
    for user, c in creds.items():
        setup.append(["database", "users", "create", "--first-name", user, "--username", user,
                      "--password", c["password"], "--role", c["role"], "--api-key", c["api_key"],
                      "--workspace", workspace])
    setup.append(["search-engine", "reindex"])  # osmem is in memory: rebuild from SQLite
    return setup


def setup_argv(py: str) -> list[str]:
    """The setup process's command line: the batch itself comes on stdin."""
    return [py, str(LAUNCHER), "--batch", "-"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie counts as dead
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (MB)."""
    total = 0
    todo = [pid]
    seen = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo += [int(c) for c in fh.read().split()]
        except OSError:
            pass
    return total / 1024


def up(port: int | None = None, *, detach: bool = False, timeout_s: float = 300.0,
       workspace: str = "linernotes") -> ArgillaStack:
    """Start redis, osmem, the rq worker and argilla-server on 127.0.0.1; return the stack.

    Reuses a healthy stack from the state file. `detach=False` ties the
    processes to this Python process (they get SIGTERM when it dies);
    `detach=True` (the CLI's `up`) leaves them running until `down()`.
    Users: owner `argilla`, annotators `annotator`/`annotator2`, all in
    `workspace`; keys and passwords are kept in `paths.home()/"argilla"/"credentials.json"`
    (0600; printed masked; `linernotes services status argilla --show-secrets` shows them).
    """
    with _lock("argilla-stack"):
        st = status()
        if st.get("running"):
            _log(f"already running at {st['api_url']}")
            return _stack_from_state(st)
        if st.get("pids"):
            _stop_pids(st["pids"])  # half-dead stack: clean up first
        if not is_installed():
            install()
        t0 = time.monotonic()
        creds = _credentials()
        ddir = data_dir()
        logs = paths.sub("logs")
        redis_dir = ddir / "redis"
        redis_dir.mkdir(exist_ok=True)
        ports = {"redis": free_port(HOST), "osmem": free_port(HOST), "server": port or free_port(HOST)}
        db_url = f"sqlite+aiosqlite:///{ddir / 'argilla.db'}?check_same_thread=False"
        env = {
            "ARGILLA_HOME_PATH": str(ddir),
            "ARGILLA_DATABASE_URL": db_url,
            "ARGILLA_REDIS_URL": f"redis://{HOST}:{ports['redis']}/0",
            "ARGILLA_ELASTICSEARCH": f"http://{HOST}:{ports['osmem']}",
            "ARGILLA_SEARCH_ENGINE": "opensearch",
            "ARGILLA_ENABLE_TELEMETRY": "0",
            "ARGILLA_SHOW_HUGGINGFACE_SPACE_PERSISTENT_STORAGE_WARNING": "false",
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
        py = str(venv_python())
        procs: dict[str, ServerProcess] = {}
        try:
            procs["redis"] = _RedisProcess(
                name="redis", host=HOST, port=ports["redis"], log_path=logs / "argilla-redis.log",
                cmd=[redis_binary(), "--port", str(ports["redis"]), "--bind", HOST, "--save", "",
                     "--appendonly", "no", "--dir", str(redis_dir), "--daemonize", "no"],
                die_with_parent=not detach).start(timeout_s=30)
            _log(f"redis on {ports['redis']} (pid {procs['redis'].proc.pid})")
            procs["osmem"] = ServerProcess(
                name="osmem", host=HOST, port=ports["osmem"], log_path=logs / "argilla-osmem.log",
                cmd=[str(osmem_binary()), "--addr", f"{HOST}:{ports['osmem']}", "--no-stdin-watch"],
                health_path="/", die_with_parent=not detach).start(timeout_s=30)
            _log(f"osmem-server on {ports['osmem']} (pid {procs['osmem'].proc.pid})")
            setup = setup_batch(creds, workspace)
            _log("database migrate, users, search-engine reindex")
            with open(logs / "argilla-setup.log", "ab") as log:
                r = subprocess.run(setup_argv(py), input=json.dumps(setup).encode(), stdout=log,
                                   stderr=subprocess.STDOUT, env={**os.environ, **env}, timeout=timeout_s)
            if r.returncode != 0:
                raise RuntimeError("argilla setup failed; see " + str(logs / "argilla-setup.log") + ":\n"
                                   + "\n".join((logs / "argilla-setup.log").read_text().splitlines()[-30:]))
            procs["worker"] = _WorkerProcess(
                name="argilla-worker", host=HOST, port=0, log_path=logs / "argilla-worker.log",
                cmd=[py, str(LAUNCHER), "worker", "--num-workers", "1"], env=env,
                die_with_parent=not detach).start(timeout_s=120)
            _log(f"rq worker (pid {procs['worker'].proc.pid})")
            procs["server"] = ServerProcess(
                name="argilla-server", host=HOST, port=ports["server"], log_path=logs / "argilla-server.log",
                cmd=[py, str(LAUNCHER), "start", "--host", HOST, "--port", str(ports["server"]),
                     "--no-access-log"],
                health_path="/api/v1/version", env=env, die_with_parent=not detach).start(timeout_s=timeout_s)
        except BaseException:
            for p in reversed(list(procs.values())):
                p.stop()
            raise
        stack = ArgillaStack(
            api_url=procs["server"].base_url,
            owner_api_key=creds[OWNER]["api_key"],
            annotator_api_keys={a: creds[a]["api_key"] for a in ANNOTATORS},
            passwords={u: c["password"] for u, c in creds.items()},
            pids={n: p.proc.pid for n, p in procs.items()}, ports=ports,
            started_at=time.time(), start_s=round(time.monotonic() - t0, 1), detached=detach,
            processes=procs)
        write_private(state_path(), json.dumps(stack.to_json(), indent=1))
        _log_ready(stack, creds)
        return stack


def _log_ready(stack: ArgillaStack, creds: dict) -> None:
    """Where the stack is and where its secrets are; keys and passwords masked (logs are read by many)."""
    _log(f"ready in {stack.start_s:.0f}s: {stack.api_url}  (UI login: {OWNER} / "
         f"{mask(creds[OWNER]['password'])})")
    _log(f"users {OWNER}, {', '.join(ANNOTATORS)}: keys {mask(stack.owner_api_key)}, "
         + ", ".join(mask(k) for k in stack.annotator_api_keys.values()))
    _log(f"passwords and keys: {credentials_path()} (0600), or "
         "`linernotes services status argilla --show-secrets`")


def _stack_from_state(st: dict) -> ArgillaStack:
    keys = {f.name for f in dataclass_fields(ArgillaStack)} - {"processes"}
    return ArgillaStack(**{k: v for k, v in st.items() if k in keys})


def dataclass_fields(cls):
    import dataclasses
    return dataclasses.fields(cls)


def status() -> dict:
    """State of the local stack: {'running': bool, 'api_url', keys, pids, ports, 'alive': {...}, 'rss_mb': {...}}."""
    path = state_path()
    if not path.exists():
        return {"running": False}
    st = json.loads(read_private(path))
    alive = {n: _pid_alive(pid) for n, pid in st.get("pids", {}).items()}
    st["alive"] = alive
    st["rss_mb"] = {n: round(rss_mb(pid), 1) for n, pid in st.get("pids", {}).items() if alive[n]}
    healthy = False
    if alive and all(alive.values()):
        try:
            import httpx
            healthy = httpx.get(st["api_url"] + "/api/v1/version", timeout=3).status_code == 200
        except Exception:
            healthy = False
    st["running"] = healthy
    return st


def status_report(show_secrets: bool = False) -> dict:
    """status() for people: API keys and passwords masked unless show_secrets."""
    st = status()
    return st if show_secrets else mask_secrets(st)


def _stop_pids(pids: dict[str, int]) -> None:
    for name in ("server", "worker", "osmem", "redis"):
        pid = pids.get(name)
        if pid and _pid_alive(pid):
            stop_group(pid, grace_s=10)


def down() -> bool:
    """Stop every process of the local stack (by PID, whole process groups). True if something ran."""
    with _lock("argilla-stack"):
        path = state_path()
        if not path.exists():
            return False
        st = json.loads(path.read_text())
        pids = st.get("pids", {})
        was = any(_pid_alive(p) for p in pids.values())
        _stop_pids(pids)
        left = {n: p for n, p in pids.items() if _pid_alive(p)}
        if left:
            raise RuntimeError(f"processes survived down(): {left}")
        path.unlink(missing_ok=True)
        _log("stopped" if was else "nothing was running")
        return was


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m linernotes.services.argilla")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("install")
    p.add_argument("--force", action="store_true")
    p = sub.add_parser("up", help="start the local stack in the background (until `down`)")
    p.add_argument("--port", type=int)
    sub.add_parser("down")
    p = sub.add_parser("status")
    p.add_argument("--show-secrets", action="store_true", help="print keys and passwords unmasked")
    args = ap.parse_args(argv)
    if args.cmd == "install":
        install(force=args.force)
    elif args.cmd == "up":
        up(port=args.port, detach=True)
    elif args.cmd == "down":
        down()
    else:
        print(json.dumps(status_report(show_secrets=args.show_secrets), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
