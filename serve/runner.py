"""`linernotes serve` in the foreground: engine + catalog + uvicorn until SIGINT/SIGTERM.

    run_endpoint(settings)         what serve.cli runs once the flags are parsed

serve.cli -> serve.runner -> serve.app: nothing here imports the CLI back.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from serve.app import EndpointState, build_app
from serve.settings import ServeSettings


def _log(msg: str) -> None:
    print(f"[serve] {msg}", flush=True)


def run_endpoint(settings: ServeSettings, *, engine_start_timeout_s: float = 300.0) -> int:
    """Foreground: start the engine, load the catalog meanwhile, serve until SIGINT/SIGTERM."""
    import uvicorn

    from serve.engine import build_engine
    from serve.explain import CatalogView, Explainer

    engine = build_engine(settings)
    _log(f"engine {engine.kind}: {engine.model_path} ({settings.slots} slots, "
         f"{settings.engine_threads} thread(s)); starting")
    catalog_box: dict[str, Any] = {}

    def load_catalog():
        try:
            catalog_box["view"] = CatalogView.load(settings.catalog_dir)
        except Exception as exc:  # reported below; explain then takes inline objects only
            catalog_box["error"] = exc

    loader = None
    if settings.catalog_dir is not None:
        loader = threading.Thread(target=load_catalog, daemon=True)
        loader.start()
    t0 = time.monotonic()
    rec_engine = None
    try:
        if settings.recommend_model is not None:  # /v1/recommend: the code model on its own llama.cpp
            from serve.recommend import start_code_engine
            rec_engine = start_code_engine(settings, timeout_s=engine_start_timeout_s, log=_log)
        engine.start(timeout_s=engine_start_timeout_s)
        _log(f"engine ready in {time.monotonic() - t0:.1f}s at {engine.base_url} (log {engine.process.log_path})")
        if loader is not None:
            loader.join()
            if "error" in catalog_box:
                raise SystemExit(f"catalog {settings.catalog_dir}: {catalog_box['error']}")
            view = catalog_box["view"]
            _log(f"catalog {view.folder}: {len(view.items):,} items, {len(view.listeners):,} listeners "
                 f"(loaded in {view.load_s:.1f}s)")
        state = EndpointState(settings=settings, engine_url=engine.base_url, engine_key=engine.api_key,
                              engine_kind=engine.kind,
                              explainer=Explainer(catalog_box.get("view")))
        state.explainer.warm_up()
        if rec_engine is not None:
            from serve.recommend import recommend_service
            state.recommender = recommend_service(settings, rec_engine, state.explainer, log=_log)
        app = build_app(state)
        _log(f"serving {settings.served_name!r} on http://{settings.host}:{settings.port}/v1 "
             f"({len(settings.api_keys)} key(s); slots {settings.slots}, queue {settings.queue_size}, "
             f"max_tokens cap {settings.max_tokens_cap}, timeout {settings.request_timeout_s:.0f}s)")
        config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                                access_log=False, timeout_graceful_shutdown=5, lifespan="on")
        uvicorn.Server(config).run()
    finally:
        engine.stop()
        if rec_engine is not None:
            rec_engine.stop()
        _log("engine stopped")
    return 0

