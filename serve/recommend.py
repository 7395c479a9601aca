"""`/v1/recommend` without HTTP: listener -> top-K items by trie beam search on a second llama.cpp
engine serving a code model (`finetune.export.codes`), each with a gated liner note from the main one.

    ServedRecommender(engine_base_url, engine_key, table, item_type)   the search over the code engine
    RecommendService(recommender, explainer, served_name, ...)          request parsing + notes

Prompt: `recommend.tasks.next_code_prompt(history codes)` rendered by the code engine itself
(/apply-template, then /tokenize with parse_special), not by the HF tokenizer in the export's
merged/ folder. Why: the export gate checks, prompt by prompt, that this rendering is the HF
tokenizer's chat prompt token for token, so it is the training prompt; and the endpoint then needs
neither transformers nor a second copy of the tokenizer: what it serves is the GGUF alone.

Search: `finetune.export.codes.CodeSearch` (the one implementation the export gate compares with
the HF path), one /completion per live beam per step, the beams of a step sent concurrently (the
code engine has RECOMMEND_SLOTS slots). Items already in the history are banned in the trie, so K
unseen items come back. Every returned code is checked against the id table (`EngineError`
otherwise): the valid-code rate is 100% by construction, and reported.

Request body (RECOMMEND_FIELDS; anything else is a 400, as on /v1/explain):
    listener_id           a catalog listener (its history: catalog items of the served type)
    listener              inline: {"history": [item_id | {"item_id": ...}, ...], "listener_id"?,
                          "country"?, "age_band"?, "taste"?} (ids must be catalog items)
    item_type             optional; must be the code model's type
    k                     1..20 (default 5)
    explain               default true: a liner note per item from the main engine, with the gates
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import httpx

from finetune.export.codes import (
    DEFAULT_BEAMS, DEFAULT_N_PROBS, CodeSearch, EngineError, completion_body, step_scores,
)
from recommend.trie import CodeTrie

RECOMMEND_FIELDS = frozenset({"listener_id", "listener", "item_type", "k", "explain"})
LISTENER_FIELDS = frozenset({"listener_id", "history", "country", "age_band", "taste"})
MAX_K = 20
DEFAULT_K = 5
RECOMMEND_SLOTS = 4  # the code engine's parallel slots: the beams of one step run together
RECOMMEND_CTX_PER_SLOT = 1024
FLAG = "--recommend-model"


class RecommendError(Exception):
    """A request the route must refuse: `status` is the HTTP status, `code` the error code."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.code = status, code


# --------------------------------------------------------------------------- the code engine


class ServedRecommender:
    """Top-K codes from the code engine (llama.cpp over a `finetune.export.codes` GGUF).

    `token_ids` / `end_id` default to what `prepare()` reads from the engine (/tokenize of each
    code token must be exactly one id; the end token is <|im_end|>); `transport` is for tests."""

    def __init__(self, engine_base_url: str, engine_key: str, table, item_type: str, *,
                 token_ids: Mapping[str, int] | None = None, end_id: int | None = None,
                 num_beams: int = DEFAULT_BEAMS, n_probs: int = DEFAULT_N_PROBS,
                 transport: httpx.AsyncBaseTransport | None = None, timeout_s: float = 60.0):
        self.base_url = engine_base_url.rstrip("/").removesuffix("/v1")
        self.key, self.table, self.item_type = engine_key, table, item_type
        self.num_beams, self.n_probs, self.timeout_s = num_beams, n_probs, timeout_s
        self.transport = transport
        self.token_ids = dict(token_ids) if token_ids is not None else None
        self.end_id = end_id
        self.trie: CodeTrie | None = None
        self._client: httpx.AsyncClient | None = None
        if self.token_ids is not None and self.end_id is not None:
            self._build_trie()

    @classmethod
    def from_export(cls, export_dir: str | Path, engine_base_url: str, engine_key: str, **kw) -> "ServedRecommender":
        """From a code export folder's manifest.json (item type, id-table version, token ids)."""
        from finetune.export.codes import load_export_table

        path = Path(export_dir) / "manifest.json"
        try:
            m = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a readable code export manifest ({exc})") from None
        if m.get("task") != "recommend":
            raise ValueError(f"{path}: task {m.get('task')!r}; {FLAG} takes a `python -m finetune.export.codes` "
                             "export folder")
        table = load_export_table(export_dir, m)
        return cls(engine_base_url, engine_key, table, m["item_type"],
                   token_ids=(m.get("code_tokens") or {}).get("ids"), end_id=m.get("end_token_id"), **kw)

    # ------------------------------------------------------------ set-up

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def _build_trie(self) -> None:
        from recommend.llm_recommender import table_codes

        self.trie = CodeTrie.from_codes(table_codes(self.table), self.token_ids, int(self.end_id))
        self.token_text = {int(i): t for t, i in self.token_ids.items()}

    def prepare(self, transport: httpx.BaseTransport | None = None) -> "ServedRecommender":
        """Check (or read) the code token ids through the engine's /tokenize; builds the trie.
        Synchronous: run once before serving."""
        from finetune.export.codes import check_served_tokens

        with httpx.Client(base_url=self.base_url, headers=self._headers(), timeout=self.timeout_s,
                          transport=transport) as http:
            if self.token_ids is None:
                self.token_ids = {}
                for tok in self.table.token_vocab():
                    got = http.post("/tokenize", json={"content": tok, "add_special": False}).json()["tokens"]
                    if len(got) != 1:
                        raise EngineError(f"code token {tok} is {len(got)} tokens in the engine, not one: "
                                          "is this a code export?")
                    self.token_ids[tok] = int(got[0])
            else:
                problems = check_served_tokens(http, self.token_ids)
                if problems:
                    raise EngineError("code engine tokenizer: " + "; ".join(problems[:3]))
            if self.end_id is None:
                got = http.post("/tokenize", json={"content": "<|im_end|>", "add_special": False,
                                                   "parse_special": True}).json()["tokens"]
                if len(got) != 1:
                    raise EngineError(f"<|im_end|> is {got} in the engine, not one end token")
                self.end_id = int(got[0])
        self._build_trie()
        return self

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.base_url, headers=self._headers(),
                                             timeout=httpx.Timeout(self.timeout_s, connect=10.0),
                                             transport=self.transport)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ------------------------------------------------------------ calls

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.client().post(path, json=body)
        if resp.status_code != 200:
            raise EngineError(f"code engine {path}: {resp.status_code} {resp.text[:200]}")
        return resp.json()

    async def prompt_ids(self, history_codes: Sequence[str]) -> list[int]:
        from recommend.tasks import next_code_prompt

        messages = next_code_prompt(list(history_codes), self.item_type)
        rendered = (await self._post("/apply-template", {"messages": messages}))["prompt"]
        data = await self._post("/tokenize", {"content": rendered, "add_special": True, "parse_special": True})
        return [int(t) for t in data["tokens"]]

    async def recommend(self, history_item_ids: Sequence[str], k: int, num_beams: int | None = None
                        ) -> dict[str, Any]:
        """{"items": [{item_id, code, score}], "engine_calls", "valid_code_rate"} for a history of
        item ids (those without a code in the table, e.g. other types, are left out)."""
        if self.trie is None:
            raise EngineError("ServedRecommender.prepare() was not run")
        history_codes = []
        for item_id in history_item_ids:
            try:
                history_codes.append(self.table.code_of(item_id))
            except KeyError:
                continue
        prompt = await self.prompt_ids(history_codes)
        trie = self.trie
        banned = trie.banned_counts(trie.ids_of_code(c, self.token_ids) for c in history_codes)
        search = CodeSearch(trie, max(num_beams or self.num_beams, k), k, banned)
        while reqs := search.requests():
            answers = await asyncio.gather(*(
                self._post("/completion", completion_body(prompt + ids, allowed, self.token_text, trie.end_id,
                                                          self.n_probs))
                for _, ids, allowed in reqs))
            search.feed([(b, step_scores(a, allowed)) for a, (b, _, allowed) in zip(answers, reqs)])
        seen = set(history_item_ids)
        items, invalid = [], []
        for code, score in search.results():
            if code is None:  # an empty hypothesis: every code banned, fewer than k items
                continue
            try:
                item_id = self.table.item_of(code)
            except KeyError:
                invalid.append(code)
                continue
            if item_id in seen:
                raise EngineError(f"code {code} names {item_id}, which is in the history (ban failed)")
            items.append({"item_id": item_id, "code": code, "score": round(float(score), 4)})
        n_codes = len(items) + len(invalid)
        rate = len(items) / n_codes if n_codes else None
        if invalid:  # the trie is built from the table: this is a bug, never a result
            raise EngineError(f"codes not in table {self.table.version}: {invalid[:3]} (valid-code rate {rate})")
        return {"items": items, "history_codes": len(history_codes), "engine_calls": search.calls,
                "extra_calls": search.extra_calls, "inexact_steps": search.inexact_steps,
                "valid_code_rate": rate}


# --------------------------------------------------------------------------- the route's body


@dataclass
class RecommendRequest:
    listener: Any  # linernotes.records.Listener
    history: list[str]
    k: int
    explain: bool


class RecommendService:
    """Parses /v1/recommend bodies and runs them: search on the code engine, notes on the main one."""

    def __init__(self, recommender: ServedRecommender, explainer, served_name: str, *,
                 explain_max_tokens: int = 128):
        self.recommender, self.explainer = recommender, explainer
        self.served_name, self.explain_max_tokens = served_name, explain_max_tokens

    @property
    def item_type(self) -> str:
        return self.recommender.item_type

    def _catalog(self):
        if self.explainer is None or self.explainer.catalog is None:
            raise RecommendError(409, "this endpoint has no catalog: /v1/recommend needs one for titles and "
                                      "notes (start it with --catalog, or `linernotes setup`)", "no_catalog")
        return self.explainer.catalog

    def parse(self, body: Mapping[str, Any]) -> RecommendRequest:
        from serve.openai_fields import names

        unknown = sorted(set(body) - RECOMMEND_FIELDS)
        if unknown:
            raise RecommendError(400, f"unsupported field(s) {names(unknown)}: /v1/recommend accepts "
                                      f"{', '.join(sorted(RECOMMEND_FIELDS))}")
        item_type = body.get("item_type", self.item_type)
        if item_type != self.item_type:
            raise RecommendError(409, f"item_type {str(item_type)[:40]!r}: this endpoint's recommend model "
                                      f"serves {self.item_type!r} (start another with {FLAG} <an export of a "
                                      f"codes run of that type>)", "item_type_not_served")
        k = body.get("k", DEFAULT_K)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise RecommendError(400, f"k must be an integer from 1 to {MAX_K}")
        explain = body.get("explain", True)
        if not isinstance(explain, bool):
            raise RecommendError(400, "explain must be true or false")
        has_id, has_inline = body.get("listener_id") is not None, body.get("listener") is not None
        if has_id == has_inline:
            raise RecommendError(400, "give exactly one of listener_id (a catalog id) or listener (an object "
                                      "with a history of catalog item ids)")
        catalog = self._catalog()
        if has_id:
            lid = body["listener_id"]
            if not isinstance(lid, str) or not lid:
                raise RecommendError(400, "listener_id must be a non-empty string")
            listener = catalog.listeners.get(lid)
            if listener is None:
                raise RecommendError(404, f"unknown listener_id {lid[:100]!r}", "listener_not_found")
        else:
            listener = self._inline_listener(body["listener"], catalog)
        return RecommendRequest(listener=listener, history=[h.item_id for h in listener.history], k=k,
                                explain=explain)

    def _inline_listener(self, raw: Any, catalog):
        from pydantic import ValidationError

        from linernotes.records import HistoryEntry, Listener
        from serve.explain import _errors
        from serve.openai_fields import names

        if not isinstance(raw, dict):
            raise RecommendError(400, "listener must be an object")
        unknown = sorted(set(raw) - LISTENER_FIELDS)
        if unknown:
            raise RecommendError(400, f"unsupported listener field(s) {names(unknown)}: accepted "
                                      f"{', '.join(sorted(LISTENER_FIELDS))}")
        history = raw.get("history")
        if not isinstance(history, list):
            raise RecommendError(400, "listener.history must be a list of catalog item ids")
        entries = []
        for i, entry in enumerate(history):
            item_id = entry.get("item_id") if isinstance(entry, dict) else entry
            if not isinstance(item_id, str) or not item_id:
                raise RecommendError(400, f"listener.history[{i}]: expected an item id string or {{\"item_id\": ...}}")
            item = catalog.items.get(item_id)
            if item is None:
                raise RecommendError(400, f"listener.history[{i}]: unknown item_id {item_id[:100]!r}")
            entries.append(HistoryEntry(item_id=item.item_id, title=item.title, creator=item.creator,
                                        genres=list(item.genres or [])[:4]))
        fields = {k: raw[k] for k in ("country", "age_band", "taste") if k in raw}
        try:
            return Listener.model_validate({"listener_id": raw.get("listener_id") or "inline", "source": "inline",
                                            "history": entries, **fields})
        except ValidationError as exc:
            raise RecommendError(400, f"invalid listener: {_errors(exc, 'listener')}") from None

    async def run(self, req: RecommendRequest, main: httpx.AsyncClient) -> dict[str, Any]:
        """The response body: items with title/creator/score and, when asked, a gated note each."""
        t0 = time.monotonic()
        found = await self.recommender.recommend(req.history, req.k)
        catalog = self._catalog()
        t_search = time.monotonic()
        items = []
        for rec in found["items"]:
            item = catalog.items.get(rec["item_id"])
            if item is None:
                raise RecommendError(500, f"recommended {rec['item_id']} is not in this endpoint's catalog "
                                          "(the id table and catalog differ)", "catalog_mismatch")
            items.append((item, rec))
        notes = await asyncio.gather(*(self._note(item, req.listener, main) for item, _ in items)) \
            if req.explain else [None] * len(items)
        out = []
        for (item, rec), note in zip(items, notes):
            out.append({"item_id": item.item_id, "code": rec["code"], "title": item.title, "creator": item.creator,
                        "score": rec["score"],
                        "explanation": note["explanation"] if note else None,
                        "passed": note["passed"] if note else None,
                        "gates": note["gates"] if note else None})
        return {"listener_id": req.listener.listener_id, "item_type": self.item_type, "items": out,
                "valid_code_rate": found["valid_code_rate"], "table_version": self.recommender.table.version,
                "history_items": found["history_codes"], "engine_calls": found["engine_calls"],
                "search_ms": round((t_search - t0) * 1000, 1),
                "latency_ms": round((time.monotonic() - t0) * 1000, 1)}

    async def _note(self, item, listener, main: httpx.AsyncClient) -> dict[str, Any]:
        payload = self.explainer.chat_request(item, listener, model=self.served_name,
                                              max_tokens=self.explain_max_tokens, temperature=0.0, seed=None)
        resp = await main.post("/v1/chat/completions", json=payload)
        if resp.status_code != 200:
            raise RecommendError(502, f"main engine answered {resp.status_code}: {resp.text[:200]}", "bad_gateway")
        choice = (resp.json().get("choices") or [{}])[0]
        return self.explainer.judge(item, listener, (choice.get("message") or {}).get("content"))


# --------------------------------------------------------------------------- start-up (serve.runner)


@dataclass
class CodeEngine:
    process: Any  # linernotes.services.process.ServerProcess
    api_key: str
    export_dir: Path

    @property
    def base_url(self) -> str:
        return self.process.base_url

    def stop(self) -> None:
        self.process.stop()


def start_code_engine(settings, *, timeout_s: float = 300.0, log=print) -> CodeEngine:
    """The code model's llama.cpp engine, started, with a random key of its own. Always llama.cpp
    (whatever --engine says): the search needs its grammar, logit_bias and pre-sampling top_logprobs."""
    import secrets

    from linernotes.services.llamacpp import server
    from serve.settings import choose_model_file

    export_dir = Path(settings.recommend_model)
    gguf = choose_model_file(export_dir)
    key = secrets.token_urlsafe(24)
    proc = server(gguf, model_name="recommend-codes", n_parallel=RECOMMEND_SLOTS,
                  n_threads=settings.engine_threads, ctx_per_slot=RECOMMEND_CTX_PER_SLOT, api_key=key,
                  cache_ram_mib=settings.engine_cache_ram_mib)
    t0 = time.monotonic()
    proc.start(timeout_s=timeout_s)
    log(f"code engine ready in {time.monotonic() - t0:.1f}s: {gguf} ({RECOMMEND_SLOTS} slots)")
    return CodeEngine(process=proc, api_key=key, export_dir=export_dir)


def recommend_service(settings, code_engine, explainer, *, log=print) -> RecommendService:
    """The /v1/recommend service over a started code engine: token ids checked through /tokenize."""
    rec = ServedRecommender.from_export(code_engine.export_dir, code_engine.base_url, code_engine.api_key)
    rec.prepare()
    log(f"recommend: {rec.item_type} table {rec.table.version}, {len(rec.trie)} codes, "
        f"{len(rec.token_ids)} code tokens checked")
    return RecommendService(rec, explainer, settings.served_name, explain_max_tokens=settings.explain_max_tokens)
