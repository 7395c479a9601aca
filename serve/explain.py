"""The `/v1/explain` domain route without HTTP: request -> training prompt -> gated answer.

The prompt is the one the model was fine-tuned on: the zero-shot [system, user]
messages of `synth.prompts.PromptBuilder(template, [], 0)` (what
`curation.publish.prompt_messages` rebuilds for SFT rows). Generation is
constrained to `EXPLANATION_SCHEMA`, parsed with `synth.llm.parse_explanation`
and judged by `synth.gates.run_gates` with the catalog's gate index (the same
index the synth pipeline uses), so a caller sees why an answer would have been
gated out of the training data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from linernotes.records import Item, Listener


class ExplainError(Exception):
    """A request the route must refuse: `status` is the HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class CatalogView:
    items: dict[str, Item]
    listeners: dict[str, Listener]
    index: Any  # synth.gates.CatalogIndex
    folder: Path
    load_s: float

    @classmethod
    def load(cls, folder: str | Path) -> "CatalogView":
        """Items, listeners and the gate index (pickled beside the catalog), once."""
        from synth.catalog.ingest import load_catalog
        from synth.pipeline import load_gate_index

        t0 = time.perf_counter()
        folder = Path(folder)
        catalog = load_catalog(folder)
        index = load_gate_index(folder)
        return cls(items=catalog.items, listeners={ls.listener_id: ls for ls in catalog.listeners},
                   index=index, folder=folder, load_s=time.perf_counter() - t0)


class Explainer:
    """Builds prompts and judges answers; the HTTP layer does the engine call."""

    def __init__(self, catalog: CatalogView | None, template_path: str | Path | None = None):
        from synth.prompts import PromptBuilder, PromptTemplate

        self.catalog = catalog
        template = PromptTemplate.load(template_path)
        self.builder = PromptBuilder(template, [], 0)  # zero-shot, as in the SFT rows
        self.prompt_version = template.version_id

    def resolve(self, body: dict[str, Any]) -> tuple[Item, Listener]:
        """Item and listener from ids (catalog) or inline objects; ExplainError otherwise."""
        item = self._item(body)
        listener = self._listener(body)
        return item, listener

    def _need_catalog(self, what: str) -> None:
        if self.catalog is None:
            raise ExplainError(404, f"{what} given but this endpoint has no catalog: pass an inline "
                                    "object, or start it with a catalog (`linernotes setup`)")

    def _item(self, body: dict[str, Any]) -> Item:
        if body.get("item") is not None:
            raw = body["item"]
            if not isinstance(raw, dict):
                raise ExplainError(400, "item must be an object")
            raw = {"source": "inline", "source_row": "request", **raw}
            raw.setdefault("item_id", f"{raw.get('item_type', 'item')}:inline")
            try:
                return Item.model_validate(raw)
            except ValidationError as exc:
                raise ExplainError(400, f"invalid item: {_first_error(exc)}") from None
        item_id = body.get("item_id")
        if not isinstance(item_id, str) or not item_id:
            raise ExplainError(400, "give item_id (a catalog id) or item (an object)")
        self._need_catalog("item_id")
        try:
            return self.catalog.items[item_id]
        except KeyError:
            raise ExplainError(404, f"unknown item_id {item_id!r}") from None

    def _listener(self, body: dict[str, Any]) -> Listener:
        if body.get("listener") is not None:
            raw = body["listener"]
            if not isinstance(raw, dict):
                raise ExplainError(400, "listener must be an object")
            raw = {"listener_id": "inline", "source": "inline", **raw}
            try:
                return Listener.model_validate(raw)
            except ValidationError as exc:
                raise ExplainError(400, f"invalid listener: {_first_error(exc)}") from None
        listener_id = body.get("listener_id")
        if not isinstance(listener_id, str) or not listener_id:
            raise ExplainError(400, "give listener_id (a catalog id) or listener (an object)")
        self._need_catalog("listener_id")
        try:
            return self.catalog.listeners[listener_id]
        except KeyError:
            raise ExplainError(404, f"unknown listener_id {listener_id!r}") from None

    def warm_up(self) -> None:
        """Load the gates' word lists now, not on the first request (~1 s)."""
        item = Item(item_id="music:warm-up", item_type="music", title="Warm Up", source="warm-up",
                    source_row="0")
        self.judge(item, Listener(listener_id="warm-up", source="warm-up"),
                   '{"explanation": "A warm-up note.", "facts_used": []}')

    def messages(self, item: Item, listener: Listener) -> list[dict[str, str]]:
        return self.builder.messages(item, listener)

    def chat_request(self, item: Item, listener: Listener, *, model: str, max_tokens: int,
                     temperature: float, seed: int | None) -> dict[str, Any]:
        from synth.prompts import EXPLANATION_SCHEMA

        req = {"model": model, "messages": self.messages(item, listener), "max_tokens": max_tokens,
               "temperature": temperature,
               "response_format": {"type": "json_schema",
                                   "json_schema": {"name": "liner_note", "schema": EXPLANATION_SCHEMA}}}
        if seed is not None:
            req["seed"] = seed
        return req

    def judge(self, item: Item, listener: Listener, text: str | None) -> dict[str, Any]:
        """Parse the engine's text and run the gates; the response body minus timing/usage."""
        from synth.gates import run_gates
        from synth.llm import parse_explanation

        parsed, error = parse_explanation(text)
        explanation = parsed["explanation"] if parsed else None
        facts = parsed["facts_used"] if parsed else []
        index = self.catalog.index if self.catalog is not None else None
        gates = run_gates(explanation, facts, item, listener, index)
        verdicts = {name: g.model_dump() for name, g in gates.items()}
        return {"item_id": item.item_id, "listener_id": listener.listener_id,
                "explanation": explanation, "facts_used": facts, "parsed": parsed is not None,
                "parse_error": error, "raw_output": None if parsed else text,
                "passed": parsed is not None and all(g.passed for g in gates.values()),
                "gates": verdicts, "prompt_version": self.prompt_version}


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))
