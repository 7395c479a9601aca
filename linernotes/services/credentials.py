"""Credentials: which key goes to which URL, private files, masking.

Standard library only, on purpose: `argilla_launch.py` runs in the Argilla
venv (without the linernotes package) and imports this module by its folder.
Not named `secrets.py`: that folder lands on sys.path there and would shadow
the standard library's `secrets`.

Rules
* A key goes only to the base URL it was configured for (`api_key_for`): a
  config's own env var (`api_key_env`, `judge_api_key_env`) for that config's
  URL; `$LINERNOTES_TEACHER_API_KEY` only to `$LINERNOTES_TEACHER_BASE_URL`;
  `$OPENAI_API_KEY` only to api.openai.com. Any other URL gets no key.
* Files holding secrets are created 0600 atomically (`write_private`): a temp
  file opened O_CREAT|O_EXCL with mode 0600 in the same folder, then
  os.replace; never written first and chmodded after.
* Secrets shown to people are masked (`mask`, `mask_secrets`) unless asked.
"""

from __future__ import annotations

import os
import re
import secrets as _secrets
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

NO_KEY = "none"  # what OpenAI clients get when no key belongs to the URL
TEACHER_KEY_ENV = "LINERNOTES_TEACHER_API_KEY"
TEACHER_URL_ENV = "LINERNOTES_TEACHER_BASE_URL"
OPENAI_KEY_ENV = "OPENAI_API_KEY"
OPENAI_HOSTS = ("api.openai.com",)
ANY_URL = "*"  # for_url: the env var was configured next to this very URL (a config's api_key_env)


def _endpoint(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url.strip())
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def same_endpoint(a: str, b: str) -> bool:
    """Same scheme, host, port and path (trailing slash and case of the host ignored)."""
    return _endpoint(a) == _endpoint(b)


def is_openai_url(url: str) -> bool:
    scheme, host, _, _ = _endpoint(url)
    return scheme == "https" and host in OPENAI_HOSTS


def _warn(msg: str) -> None:
    print(f"[credentials] {msg}", file=sys.stderr, flush=True)


def api_key_for(base_url: str | None, env_name: str | None, *, for_url: str | None = ANY_URL,
                environ: Mapping[str, str] | None = None) -> str:
    """The key to send to base_url, or NO_KEY.

    env_name: the env var holding the key; for_url: the URL that key was
    configured for (ANY_URL: configured together with base_url, e.g. a
    config's api_key_env; None: for no URL known, so it is not sent).
    $OPENAI_API_KEY is sent to api.openai.com only, whatever names it."""
    env = os.environ if environ is None else environ
    if not base_url:
        return NO_KEY
    if env_name and env_name != OPENAI_KEY_ENV and env.get(env_name):
        if for_url == ANY_URL or (for_url and same_endpoint(base_url, for_url)):
            return env[env_name]
        _warn(f"${env_name} is set but configured for {for_url or 'no URL'}"
              f"{'' if for_url else f' (set ${TEACHER_URL_ENV} to the URL it is for)'}; "
              f"not sent to {base_url}")
    if is_openai_url(base_url):
        return env.get(OPENAI_KEY_ENV) or NO_KEY
    if env_name == OPENAI_KEY_ENV and env.get(OPENAI_KEY_ENV) and for_url == ANY_URL:
        _warn(f"${OPENAI_KEY_ENV} is only sent to api.openai.com, not to {base_url}; name the "
              "env var that holds this endpoint's key instead")
    return NO_KEY


# --------------------------------------------------------------------------- files

def write_private(path: str | os.PathLike, text: str) -> Path:
    """Write text to path, readable by its owner only (0600) from the first byte."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{_secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_private(path: str | os.PathLike) -> str:
    """Read a secrets file; one that others can read (an older version wrote it
    so) is tightened to 0600 first, with a note."""
    path = Path(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        _warn(f"{path} was readable by others (mode {mode:o}); now 0600")
        os.chmod(path, 0o600)
    return path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- masking

SECRET_FIELD = re.compile(r"(api_?key|password|passwd|token|secret)", re.IGNORECASE)


def mask(value: Any, keep: int = 4) -> str:
    """'argilla.Xyz...' -> 'argi…' : enough to tell keys apart, never the key."""
    if value is None or value == "":
        return "-"
    text = str(value)
    return text[:keep] + "…" if len(text) > 2 * keep else "…"


def mask_secrets(obj: Any, _inside: bool = False) -> Any:
    """A copy of obj (JSON-like) with every value under a secret-looking key
    (api_key, owner_api_key, annotator_api_keys, passwords, token, ...) masked."""
    if isinstance(obj, Mapping):
        return {k: mask_secrets(v, _inside or bool(SECRET_FIELD.search(str(k)))) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [mask_secrets(v, _inside) for v in obj]
    if _inside and isinstance(obj, str):
        return mask(obj)
    return obj


def redact(text: str, values: Iterable[str]) -> str:
    """text with each of values (secrets) replaced by its mask."""
    for v in sorted({v for v in values if v}, key=len, reverse=True):
        text = text.replace(v, mask(v))
    return text


class RedactingStream:
    """A text stream wrapper that masks known secret values before writing
    (for child processes whose libraries echo keys, e.g. argilla-server's
    `users create`)."""

    def __init__(self, stream, values: Iterable[str]):
        self._stream, self._values = stream, [v for v in values if v]

    def write(self, text: str) -> int:
        self._stream.write(redact(text, self._values))
        return len(text)

    def __getattr__(self, name: str):
        if name == "buffer":  # click writes to .buffer when it can: that would skip the masking
            raise AttributeError(name)
        return getattr(self._stream, name)
