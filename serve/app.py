"""The studio endpoint: a Starlette app in front of an engine subprocess.

    /v1/chat/completions, /v1/completions   OpenAI-compatible, proxied (SSE streamed through,
                                            response_format/json_schema passed on)
    /v1/models                              the one served model name
    /v1/explain                             domain route: item + listener -> gated liner note
    /v1/recommend                           listener -> top-K items (codes from a second engine,
                                            serve.recommend), each with a gated note
    /health                                 open; 200 once the engine answers
    /metrics                                Prometheus text; needs a key unless --metrics-open

One place for auth (Bearer key, constant-time compare), a body size limit
(413), a max_tokens cap (clamped; the header `x-linernotes-max-tokens` says
what was used), bounded concurrency (`slots` on the engine, `queue_size`
waiting, 429 + Retry-After beyond), a per-request deadline (504) and
cancellation: a client that disconnects closes the upstream connection, which
makes llama.cpp (and vLLM) abort that generation and free its slot.

The client's body never goes to the engine as is: serve.openai_fields builds the
engine's body from an allow-list of OpenAI fields (engine extensions such as
`n_predict` or `ignore_eos` are refused with a 400 naming them).

    build_app(state)               this module: the ASGI app over a running engine
    serve.runner.run_endpoint      foreground: engine + catalog + uvicorn (`linernotes serve`)
    serve.launch.start_endpoint    the same in a subprocess -> EndpointHandle (re-exported here)
    serve.launch.client_examples   a curl command and an openai-python snippet (re-exported here)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from serve import metrics as metrics_mod
from serve.launch import EndpointHandle, client_examples, start_endpoint  # noqa: F401 - re-exported
from serve.limits import Admission, BodyTooLarge, Overloaded, bearer_token, key_matches, read_limited_body
from serve.openai_fields import DROPPED_HEADER, FieldError, engine_body
from serve.settings import ServeSettings

ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/models", "/v1/explain", "/v1/recommend",
          "/health", "/metrics")
CLIENT_CLOSED = 499  # nginx's "client closed request": recorded in metrics, never sent
MAX_TOKENS_HEADER = "x-linernotes-max-tokens"


# --------------------------------------------------------------------------- errors


def error(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    """OpenAI-style error body, so the openai client raises the matching exception."""
    return JSONResponse({"error": {"message": message, "type": kind, "code": code or str(status)}},
                        status_code=status, headers=headers)


class _Refusal(Exception):
    def __init__(self, response: Response):
        self.response = response


class ClientGone(Exception):
    pass


# --------------------------------------------------------------------------- state


@dataclass
class EndpointState:
    settings: ServeSettings
    engine_url: str
    engine_key: str
    engine_kind: str = "llamacpp"
    explainer: Any = None  # serve.explain.Explainer
    recommender: Any = None  # serve.recommend.RecommendService; None: no --recommend-model
    transport: httpx.AsyncBaseTransport | None = None  # tests: a stand-in engine
    admission: Admission | None = None
    metrics: metrics_mod.Metrics | None = None
    upstream: httpx.AsyncClient | None = None
    started_at: float = field(default_factory=time.time)


def _state(request: Request) -> EndpointState:
    return request.app.state.endpoint


# --------------------------------------------------------------------------- middleware


class Guard:
    """Outermost ASGI layer: auth for every non-public path, and one metrics sample
    per request (route, final status, time to last byte)."""

    def __init__(self, app, state: EndpointState):
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        route = path if path in ROUTES else "other"  # bounded label set
        public = path == "/health" or (path == "/metrics" and self.state.settings.metrics_open)
        t0 = time.perf_counter()
        status_seen = {"status": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status_seen["status"] = message["status"]
            await send(message)

        try:
            if not public:
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
                token = bearer_token(headers.get("authorization")) or headers.get("x-api-key")
                if not key_matches(token, self.state.settings.api_keys):
                    resp = error(401, "missing or invalid API key (Authorization: Bearer <key>)",
                                 "authentication_error", "invalid_api_key",
                                 headers={"WWW-Authenticate": "Bearer"})
                    await resp(scope, receive, send_wrapper)
                    return
            await self.app(scope, receive, send_wrapper)
        finally:
            status = scope.get("linernotes.status") or status_seen["status"]
            if route not in ("/metrics", "/health"):  # scrapes and probes would swamp the counts
                self.state.metrics.observe(route, status, time.perf_counter() - t0)


# --------------------------------------------------------------------------- request helpers


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    try:
        raw = await read_limited_body(request.stream(), request.headers.get("content-length"), limit)
    except BodyTooLarge as exc:
        raise _Refusal(error(413, str(exc), code="request_too_large")) from None
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _Refusal(error(400, f"body is not JSON: {exc}")) from None
    if not isinstance(body, dict):
        raise _Refusal(error(400, "body must be a JSON object"))
    return body


def check_model(body: dict[str, Any], settings: ServeSettings) -> None:
    """The model field is only a name: it must be the served one (never a path)."""
    name = body.get("model")
    if name is None:
        body["model"] = settings.served_name
    elif name != settings.served_name:
        raise _Refusal(error(404, f"model {str(name)[:100]!r} not served here; use "
                                  f"{settings.served_name!r} (GET /v1/models)", code="model_not_found"))


def prepare_generation(body: dict[str, Any], settings: ServeSettings,
                       route: str) -> tuple[dict[str, Any], int, list[str]]:
    """(the engine's body, built from the allow-list; token limit; dropped field names)."""
    check_model(body, settings)
    try:
        return engine_body(body, route, cap=settings.max_tokens_cap,
                           default_max_tokens=settings.default_max_tokens, max_n=settings.max_n)
    except FieldError as exc:
        raise _Refusal(error(400, str(exc))) from None


async def admit(state: EndpointState, deadline: float):
    """A slot, waiting in the bounded queue until `deadline`; 429/504 refusals otherwise."""
    try:
        with anyio.fail_after(max(0.0, deadline - time.monotonic())):
            return await state.admission.enter()
    except Overloaded as exc:
        raise _Refusal(error(429, str(exc), "rate_limit_error", "over_capacity",
                             headers={"Retry-After": str(exc.retry_after_s)})) from None
    except TimeoutError:
        raise _Refusal(error(504, "timed out waiting for a free slot", "timeout", "timeout")) from None


async def until_disconnect(receive, fn):
    """Run `fn()`; if the client disconnects first, cancel it (closing the upstream
    request, which aborts the engine's generation) and raise ClientGone.
    Exceptions of `fn` come out as themselves (not wrapped in an ExceptionGroup)."""
    outcome: dict[str, Any] = {}

    async with anyio.create_task_group() as tg:
        async def watch():
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    outcome["gone"] = True
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(watch)
        try:
            outcome["result"] = await fn()
        except Exception as exc:  # noqa: BLE001 - re-raised below, outside the task group
            outcome["error"] = exc
        finally:
            tg.cancel_scope.cancel()
    if outcome.get("gone") and "result" not in outcome:
        raise ClientGone()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def usage_of(payload: dict[str, Any]) -> tuple[int, int] | None:
    """(prompt, completion) tokens from an OpenAI usage block or llama.cpp's timings."""
    usage = payload.get("usage")
    if isinstance(usage, dict):
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    timings = payload.get("timings")
    if isinstance(timings, dict):
        return (int(timings.get("cache_n") or 0) + int(timings.get("prompt_n") or 0),
                int(timings.get("predicted_n") or 0))
    return None


class SSEUsage:
    """Watches the raw SSE bytes for the final usage/timings without altering them."""

    def __init__(self):
        self._buf = b""
        self.usage: tuple[int, int] | None = None
        self.content_chunks = 0

    def feed(self, chunk: bytes) -> None:
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            self.content_chunks += 1
            if b'"usage"' in line or b'"timings"' in line:
                try:
                    found = usage_of(json.loads(line[5:]))
                except (json.JSONDecodeError, ValueError):
                    continue
                if found:
                    self.usage = found


class ProxyStream(Response):
    """Streams an upstream SSE response through unchanged.

    Ends (and closes the upstream connection, which aborts the generation) when
    the client disconnects or the request deadline passes; releases the slot
    exactly once in every case.
    """

    media_type = "text/event-stream"

    def __init__(self, upstream: httpx.Response, state: EndpointState, ticket, t_admitted: float,
                 deadline: float, headers: dict[str, str]):
        # Not Response.__init__: with no body it would declare Content-Length: 0.
        self.status_code = 200
        self.background = None
        self.init_headers(headers)
        self.upstream, self.state, self.ticket = upstream, state, ticket
        self.t_admitted, self.deadline = t_admitted, deadline

    async def __call__(self, scope, receive, send):
        usage = SSEUsage()
        status = 200
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async with anyio.create_task_group() as tg:
                async def watch():
                    nonlocal status
                    while True:
                        if (await receive())["type"] == "http.disconnect":
                            status = CLIENT_CLOSED
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(watch)
                with anyio.move_on_after(max(0.0, self.deadline - time.monotonic())) as timer:
                    try:
                        async for chunk in self.upstream.aiter_raw():
                            usage.feed(chunk)
                            await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    except OSError:
                        status = CLIENT_CLOSED
                    except httpx.HTTPError:  # engine died mid-stream: end it, say so in metrics
                        status = 502
                if timer.cancelled_caught:
                    status = 504
                    note = {"error": {"message": "request deadline reached; stream cut",
                                      "type": "timeout", "code": "timeout"}}
                    await send({"type": "http.response.body",
                                "body": f"data: {json.dumps(note)}\n\n".encode(), "more_body": True})
                if status != CLIENT_CLOSED:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                tg.cancel_scope.cancel()
        except OSError:
            status = CLIENT_CLOSED
        finally:
            with anyio.CancelScope(shield=True):
                await self.upstream.aclose()
            self.ticket.release()
            self.state.admission.record_duration(time.monotonic() - self.t_admitted)
            if usage.usage:
                self.state.metrics.add_tokens(*usage.usage)
            else:  # no usage block (client did not ask for it): one chunk is about one token
                self.state.metrics.add_tokens(0, max(0, usage.content_chunks - 2))
            scope["linernotes.status"] = status


# --------------------------------------------------------------------------- routes


async def proxy_generation(request: Request, path: str, route: str) -> Response:
    state = _state(request)
    settings = state.settings
    deadline = time.monotonic() + settings.request_timeout_s
    try:
        client_body = await read_json(request, settings.max_body_bytes)
        body, limit, dropped = prepare_generation(client_body, settings, route)
        stream = bool(body.get("stream"))
        ticket = await admit(state, deadline)
    except _Refusal as refusal:
        return refusal.response
    t_admitted = time.monotonic()
    headers = {MAX_TOKENS_HEADER: str(limit)}
    if dropped:
        headers[DROPPED_HEADER] = ",".join(dropped)
    upstream_req = state.upstream.build_request("POST", path, json=body)
    handed_over = False
    try:
        async def call():
            with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                resp = await state.upstream.send(upstream_req, stream=True)
                if stream and resp.status_code == 200:
                    return resp
                try:
                    await resp.aread()
                finally:
                    await resp.aclose()
                return resp

        try:
            resp = await until_disconnect(request.receive, call)
        except ClientGone:
            request.scope["linernotes.status"] = CLIENT_CLOSED
            return Response(status_code=204)  # never reaches the gone client
        except TimeoutError:
            return error(504, f"no answer within {settings.request_timeout_s:.0f}s", "timeout", "timeout")
        except httpx.HTTPError as exc:
            return error(502, f"engine unreachable: {type(exc).__name__}", "engine_error", "bad_gateway")
        if stream and resp.status_code == 200:
            handed_over = True
            return ProxyStream(resp, state, ticket, t_admitted, deadline,
                               {**headers, "cache-control": "no-cache", "x-accel-buffering": "no"})
        content = resp.content
        if resp.status_code == 200:
            try:
                found = usage_of(json.loads(content))
            except (json.JSONDecodeError, ValueError):
                found = None
            if found:
                state.metrics.add_tokens(*found)
        return Response(content, status_code=resp.status_code, headers=headers,
                        media_type=resp.headers.get("content-type", "application/json"))
    finally:
        if not handed_over:
            ticket.release()
            state.admission.record_duration(time.monotonic() - t_admitted)


async def chat_completions(request: Request) -> Response:
    return await proxy_generation(request, "/v1/chat/completions", "chat")


async def completions(request: Request) -> Response:
    return await proxy_generation(request, "/v1/completions", "completions")


async def models(request: Request) -> Response:
    state = _state(request)
    return JSONResponse({"object": "list", "data": [{
        "id": state.settings.served_name, "object": "model", "created": int(state.started_at),
        "owned_by": "linernotes", "engine": state.engine_kind}]})


async def explain(request: Request) -> Response:
    from serve.explain import ExplainError

    state = _state(request)
    settings = state.settings
    t0 = time.monotonic()
    deadline = t0 + settings.request_timeout_s
    try:
        body = await read_json(request, settings.max_body_bytes)
        check_model(body, settings)
        try:
            item, listener = state.explainer.resolve(body)
        except ExplainError as exc:
            raise _Refusal(error(exc.status, str(exc))) from None
        max_tokens = body.get("max_tokens", settings.explain_max_tokens)
        temperature = body.get("temperature", 0.0)
        seed = body.get("seed")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise _Refusal(error(400, "max_tokens must be a positive integer"))
        if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            raise _Refusal(error(400, "temperature must be between 0 and 2"))
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise _Refusal(error(400, "seed must be an integer"))
        max_tokens = min(max_tokens, settings.max_tokens_cap)
        ticket = await admit(state, deadline)
    except _Refusal as refusal:
        return refusal.response
    t_admitted = time.monotonic()
    payload = state.explainer.chat_request(item, listener, model=settings.served_name,
                                           max_tokens=max_tokens, temperature=float(temperature),
                                           seed=seed)
    try:
        async def call():
            with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                return await state.upstream.post("/v1/chat/completions", json=payload)

        try:
            resp = await until_disconnect(request.receive, call)
        except ClientGone:
            request.scope["linernotes.status"] = CLIENT_CLOSED
            return Response(status_code=204)
        except TimeoutError:
            return error(504, f"no answer within {settings.request_timeout_s:.0f}s", "timeout", "timeout")
        except httpx.HTTPError as exc:
            return error(502, f"engine unreachable: {type(exc).__name__}", "engine_error", "bad_gateway")
    finally:
        ticket.release()
        state.admission.record_duration(time.monotonic() - t_admitted)
    engine_s = time.monotonic() - t_admitted
    if resp.status_code != 200:
        return error(502, f"engine answered {resp.status_code}: {resp.text[:300]}", "engine_error",
                     "bad_gateway")
    data = resp.json()
    choice = (data.get("choices") or [{}])[0]
    text = (choice.get("message") or {}).get("content")
    prompt_tokens, completion_tokens = usage_of(data) or (0, 0)
    state.metrics.add_tokens(prompt_tokens, completion_tokens)
    result = state.explainer.judge(item, listener, text)
    result.update({
        "model": settings.served_name, "finish_reason": choice.get("finish_reason"),
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
        "latency_ms": round((time.monotonic() - t0) * 1000, 1),
        "queue_ms": round((t_admitted - t0) * 1000, 1),
        "engine_ms": round(engine_s * 1000, 1)})
    return JSONResponse(result, headers={MAX_TOKENS_HEADER: str(max_tokens)})


async def recommend(request: Request) -> Response:
    """/v1/recommend: the body is serve.recommend's; here only the HTTP concerns (auth is Guard's)."""
    from serve.recommend import FLAG, RecommendError

    state = _state(request)
    deadline = time.monotonic() + state.settings.request_timeout_s
    try:
        body = await read_json(request, state.settings.max_body_bytes)
        if state.recommender is None:
            raise _Refusal(error(409, f"no recommend model on this endpoint: start it with {FLAG} "
                                      "<export folder of `python -m finetune.export.codes`>",
                                 code="no_recommend_model"))
        try:
            req = state.recommender.parse(body)
        except RecommendError as exc:
            raise _Refusal(error(exc.status, str(exc), code=exc.code)) from None
        ticket = await admit(state, deadline)
    except _Refusal as refusal:
        return refusal.response
    t_admitted = time.monotonic()
    try:
        async def call():
            with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                return await state.recommender.run(req, state.upstream)

        result = await until_disconnect(request.receive, call)
    except ClientGone:
        request.scope["linernotes.status"] = CLIENT_CLOSED
        return Response(status_code=204)
    except TimeoutError:
        return error(504, f"no answer within {state.settings.request_timeout_s:.0f}s", "timeout", "timeout")
    except RecommendError as exc:
        return error(exc.status, str(exc), "engine_error" if exc.status >= 500 else "invalid_request_error", exc.code)
    except (httpx.HTTPError, RuntimeError) as exc:  # serve.recommend's EngineError is a RuntimeError
        return error(502, f"engine error: {type(exc).__name__}: {str(exc)[:300]}", "engine_error", "bad_gateway")
    finally:
        ticket.release()
        state.admission.record_duration(time.monotonic() - t_admitted)
    return JSONResponse(result)


async def health(request: Request) -> Response:
    state = _state(request)
    try:
        ok = (await state.upstream.get("/health", timeout=5.0)).status_code == 200
    except httpx.HTTPError:
        ok = False
    adm = state.admission
    return JSONResponse({"status": "ok" if ok else "engine unavailable", "engine": state.engine_kind,
                         "model": state.settings.served_name, "slots": adm.slots,
                         "queue_size": adm.queue_size, "in_flight": adm.active,
                         "queue_depth": adm.waiting,
                         "catalog": bool(state.explainer and state.explainer.catalog),
                         "recommend": state.recommender.item_type if state.recommender else None},
                        status_code=200 if ok else 503)


async def metrics_route(request: Request) -> Response:
    return PlainTextResponse(_state(request).metrics.render(), media_type=metrics_mod.CONTENT_TYPE)


# --------------------------------------------------------------------------- app


def build_app(state: EndpointState):
    """The ASGI app for one endpoint (engine already running at state.engine_url)."""
    import contextlib

    state.admission = Admission(state.settings.slots, state.settings.queue_size)
    state.metrics = metrics_mod.Metrics(gauges={
        "in_flight": ("Requests holding an engine slot.", lambda: state.admission.active),
        "queue_depth": ("Admitted requests waiting for a slot.", lambda: state.admission.waiting),
        "slots": ("Engine slots (concurrent generations).", lambda: state.settings.slots),
        "queue_capacity": ("Requests that may wait before 429.", lambda: state.settings.queue_size),
    })
    if state.explainer is None:
        from serve.explain import Explainer
        state.explainer = Explainer(None)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        # Pool sized above the slots: a request must never wait on httpx instead of our queue.
        limits = httpx.Limits(max_connections=state.settings.capacity + 8,
                              max_keepalive_connections=state.settings.slots + 2)
        async with httpx.AsyncClient(base_url=state.engine_url, transport=state.transport,
                                     headers={"Authorization": f"Bearer {state.engine_key}"},
                                     timeout=httpx.Timeout(None, connect=10.0), limits=limits) as client:
            state.upstream = client
            yield
            if state.recommender is not None:
                await state.recommender.recommender.aclose()

    app = Starlette(routes=[
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/explain", explain, methods=["POST"]),
        Route("/v1/recommend", recommend, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics_route, methods=["GET"]),
    ], lifespan=lifespan)
    app.state.endpoint = state
    return Guard(app, state)
