"""Starting an endpoint from Python and calling it.

    start_endpoint(...)            `linernotes serve` in a subprocess -> EndpointHandle(.base_url, .stop())
    client_examples(url, key)      a curl command and an openai-python snippet that work
    client_examples(url)           the same, reading the key from $LINERNOTES_ENDPOINT_KEY
    save_key(key, path)            the key in a 0600 file + the line that exports it

Kept apart from serve.app (the ASGI app) and serve.runner (the foreground process)
so that none of them needs the others' internals; serve.app re-exports these names.
"""

from __future__ import annotations

import json
import secrets
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serve.gate_check import ALLOW_FLAG, require_gated
from serve.settings import ENV_API_KEYS, default_served_name


@dataclass
class EndpointHandle:
    """An endpoint running in a subprocess: `base_url` is what the openai client takes."""

    process: Any  # linernotes.services.process.ServerProcess
    api_keys: list[str]
    served_name: str

    @property
    def root_url(self) -> str:
        return self.process.base_url

    @property
    def base_url(self) -> str:
        return self.process.base_url + "/v1"

    @property
    def api_key(self) -> str:
        return self.api_keys[0]

    @property
    def pid(self) -> int | None:
        return self.process.proc.pid if self.process.proc else None

    def stop(self) -> None:
        # The endpoint's own orderly shutdown (uvicorn's 5 s drain, then the
        # engine's stop) fits in this grace, so it is rarely SIGKILLed.
        self.process.stop(grace_s=20.0)

    def __enter__(self) -> "EndpointHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_endpoint(model_path: str | Path | None = None, port: int | None = None,
                   api_keys: list[str] | None = None, *, catalog_dir: str | Path | None | bool = True,
                   served_name: str | None = None, slots: int = 8, queue_size: int = 8,
                   max_tokens_cap: int = 512, request_timeout_s: float = 120.0,
                   engine: str = "auto", metrics_open: bool = False, host: str = "127.0.0.1",
                   extra_args: list[str] | None = None, timeout_s: float = 300.0,
                   detach: bool = False, allow_ungated: bool = False,
                   recommend_model: str | Path | None = None) -> EndpointHandle:
    """Start `linernotes serve` in a subprocess and wait until /health is 200.

    api_keys None: one random key (handle.api_key). catalog_dir True: the ingested
    catalog if there is one; None/False: none. The keys reach the child through
    its environment, never its command line. detach=True: the endpoint outlives
    this process (the demo leaves it running); stop it with `handle.stop()` or
    `kill -- -<pid>` (it runs in its own process group). A fine-tune export whose
    export gate failed or was skipped raises serve.gate_check.UngatedModel here, before
    anything starts, unless allow_ungated=True (the child then gets --allow-ungated).
    recommend_model: a code-model export folder (finetune.export.codes) for /v1/recommend,
    gated the same way.
    """
    from linernotes import paths
    from linernotes.services.process import ServerProcess, free_port

    require_gated(model_path, engine=engine, allow_ungated=allow_ungated)
    if recommend_model is not None:
        require_gated(recommend_model, engine="llamacpp", allow_ungated=allow_ungated)
    keys = list(api_keys) if api_keys else [secrets.token_urlsafe(24)]
    port = port or free_port(host)
    cmd = [sys.executable, "-m", "serve", "--host", host, "--port", str(port),
           "--slots", str(slots), "--queue-size", str(queue_size),
           "--max-tokens-cap", str(max_tokens_cap), "--timeout", str(request_timeout_s),
           "--engine", engine]
    if model_path is not None:
        cmd.append(str(model_path))
    if served_name:
        cmd += ["--served-name", served_name]
    if catalog_dir is True:
        pass  # the CLI default: the ingested catalog when present
    elif catalog_dir in (None, False):
        cmd.append("--no-catalog")
    else:
        cmd += ["--catalog", str(catalog_dir)]
    if metrics_open:
        cmd.append("--metrics-open")
    if recommend_model is not None:
        cmd += ["--recommend-model", str(Path(recommend_model).resolve())]
    if allow_ungated:
        cmd.append(ALLOW_FLAG)
    cmd += list(extra_args or [])
    name = served_name or default_served_name(Path(model_path).resolve() if model_path else None)
    proc = ServerProcess(name=f"linernotes endpoint ({name})", cmd=cmd, host=host, port=port,
                         log_path=paths.sub("logs") / f"serve-{port}.log", health_path="/health",
                         env={ENV_API_KEYS: ",".join(keys)}, cwd=paths.REPO_ROOT,
                         die_with_parent=not detach)
    proc.start(timeout_s=timeout_s)
    return EndpointHandle(process=proc, api_keys=keys, served_name=name)


KEY_ENV = "LINERNOTES_ENDPOINT_KEY"


def client_examples(base_url: str, api_key: str | None = None, model: str = "smollm2-135m-instruct",
                    item_id: str | None = None, listener_id: str | None = None,
                    key_env: str = KEY_ENV) -> str:
    """A curl command (chat + explain) and an openai-python snippet for this endpoint.

    With `api_key=None` the snippets read the key from `$key_env` instead of spelling it
    out: that is the form for anything a person sees (a terminal, an app page, a log).
    """
    root = base_url.rstrip("/").removesuffix("/v1")
    if api_key is None:
        curl_auth = f'"Authorization: Bearer ${key_env}"'
        py_key, py_bearer = f"os.environ[{key_env!r}]", f"'Bearer ' + os.environ[{key_env!r}]"
        py_imports = ["import os"]
    else:
        curl_auth = shlex.quote(f"Authorization: Bearer {api_key}")
        py_key, py_bearer, py_imports = repr(api_key), repr(f"Bearer {api_key}"), []
    chat = json.dumps({"model": model, "max_tokens": 48,
                       "messages": [{"role": "user", "content": "Suggest one rock album."}]})
    lines = ["# chat completion (OpenAI-compatible)",
             f"curl -s {root}/v1/chat/completions \\",
             f"  -H {curl_auth} -H 'Content-Type: application/json' \\",
             f"  -d {shlex.quote(chat)}", ""]
    if item_id and listener_id:
        explain_body = json.dumps({"item_id": item_id, "listener_id": listener_id})
        lines += ["# liner note for a catalog item and listener, with the gates' verdict",
                  f"curl -s {root}/v1/explain \\",
                  f"  -H {curl_auth} -H 'Content-Type: application/json' \\",
                  f"  -d {shlex.quote(explain_body)}", ""]
    lines += ["# python (openai client)", *py_imports,
              "from openai import OpenAI",
              f"client = OpenAI(base_url={root + '/v1'!r}, api_key={py_key})",
              "reply = client.chat.completions.create(",
              f"    model={model!r}, max_tokens=48,",
              "    messages=[{'role': 'user', 'content': 'Suggest one rock album.'}])",
              "print(reply.choices[0].message.content)",
              "for chunk in client.chat.completions.create(",
              f"        model={model!r}, max_tokens=48, stream=True,",
              "        messages=[{'role': 'user', 'content': 'Suggest one jazz record.'}]):",
              "    print(chunk.choices[0].delta.content or '', end='', flush=True)"]
    if item_id and listener_id:
        lines += ["",
                  "# the domain route (not part of the OpenAI API): plain HTTP",
                  "import httpx",
                  f"note = httpx.post({root + '/v1/explain'!r}, timeout=120,",
                  f"                  headers={{'Authorization': {py_bearer}}},",
                  f"                  json={{'item_id': {item_id!r}, 'listener_id': {listener_id!r}}}).json()",
                  "print(note['explanation'], note['passed'], note['gates']['grounding']['reasons'])"]
    return "\n".join(lines) + "\n"


def save_key(api_key: str, path: Path) -> str:
    """Write the key to a 0600 file; returns the shell line that exports it as $KEY_ENV."""
    from linernotes.services.credentials import write_private

    key_file = write_private(path, api_key)
    return f"export {KEY_ENV}=$(cat {shlex.quote(str(key_file))})"

