"""The `/v1/explain` domain route without HTTP: request -> training prompt -> gated answer.

The prompt is the one the model was fine-tuned on: the zero-shot [system, user]
messages of `linernotes.domain.prompts.PromptBuilder.zero_shot()` (what
`curation.publish.prompt_messages` rebuilds for SFT rows). Generation is
constrained to `EXPLANATION_SCHEMA`, parsed with `linernotes.domain.parsing.parse_explanation`
and judged by `linernotes.domain.gates.run_gates` with the catalog's gate index (the same
index the synth pipeline uses), so a caller sees why an answer would have been
gated out of the training data.

Inline `item` / `listener` objects are validated by the same pydantic records as the
catalog (linernotes.records.Item, Listener, HistoryEntry): their bounds (title and
country lengths, taste and history sizes, ...) and text cleaning apply, and a body
outside them is a 400 naming the field (`listener.country: ...`). Top-level fields
outside EXPLAIN_FIELDS are refused too, as on the OpenAI routes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from linernotes.records import Item, Listener

EXPLAIN_FIELDS = frozenset({"model", "item", "item_id", "listener", "listener_id", "max_tokens",
                            "temperature", "seed"})
ITEM_TYPES = ("music", "book", "podcast")
MAX_ERRORS_SHOWN = 5


class ExplainError(Exception):
    """A request the route must refuse: `status` is the HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class CatalogView:
    items: dict[str, Item]
    listeners: dict[str, Listener]
    index: Any  # linernotes.domain.gates.CatalogIndex
    folder: Path
    load_s: float

    @classmethod
    def load(cls, folder: str | Path) -> "CatalogView":
        """Items, listeners and the gate index (pickled beside the catalog), once."""
        from synth.catalog.ingest import load_catalog
        from linernotes.domain.gate_index import load_gate_index

        t0 = time.perf_counter()
        folder = Path(folder)
        catalog = load_catalog(folder)
        index = load_gate_index(folder)
        return cls(items=catalog.items, listeners={ls.listener_id: ls for ls in catalog.listeners},
                   index=index, folder=folder, load_s=time.perf_counter() - t0)


class Explainer:
    """Builds prompts and judges answers; the HTTP layer does the engine call."""

    def __init__(self, catalog: CatalogView | None, template_path: str | Path | None = None):
        from linernotes.domain.prompts import PromptBuilder

        self.catalog = catalog
        self.builder = PromptBuilder.zero_shot(template_path)  # as in the SFT rows
        self.prompt_version = self.builder.template.version_id

    def resolve(self, body: dict[str, Any]) -> tuple[Item, Listener]:
        """Item and listener from ids (catalog) or inline objects; ExplainError otherwise."""
        from serve.openai_fields import names

        unknown = sorted(set(body) - EXPLAIN_FIELDS)
        if unknown:
            raise ExplainError(400, f"unsupported field(s) {names(unknown)}: /v1/explain accepts "
                                    f"{', '.join(sorted(EXPLAIN_FIELDS))}")
        item = self._item(body)
        listener = self._listener(body)
        return item, listener

    def _need_catalog(self, what: str) -> None:
        if self.catalog is None:
            raise ExplainError(404, f"{what} given but this endpoint has no catalog: pass an inline "
                                    "object, or start it with a catalog (`linernotes setup`)")

    def _item(self, body: dict[str, Any]) -> Item:
        def defaults(raw):
            # the id from a known type only: a bad item_type is reported as itself
            kind = raw.get("item_type") if raw.get("item_type") in ITEM_TYPES else "item"
            return {"source": "inline", "source_row": "request", "item_id": f"{kind}:inline"}

        return self._one(body, "item", Item, defaults, lambda: self.catalog.items)

    def _listener(self, body: dict[str, Any]) -> Listener:
        return self._one(body, "listener", Listener, lambda raw: {"listener_id": "inline", "source": "inline"},
                         lambda: self.catalog.listeners)

    def _one(self, body: dict[str, Any], key: str, model, defaults, table):
        """`body[key]` as an inline object (defaults filled in), else `body[key + "_id"]` looked up
        in the catalog; ExplainError names the field otherwise."""
        raw = body.get(key)
        if raw is not None:
            if not isinstance(raw, dict):
                raise ExplainError(400, f"{key} must be an object")
            try:
                return model.model_validate({**defaults(raw), **raw})
            except ValidationError as exc:
                raise ExplainError(400, f"invalid {key}: {_errors(exc, key)}") from None
        ident = body.get(f"{key}_id")
        if not isinstance(ident, str) or not ident:
            raise ExplainError(400, f"give {key}_id (a catalog id) or {key} (an object)")
        self._need_catalog(f"{key}_id")
        try:
            return table()[ident]
        except KeyError:
            raise ExplainError(404, f"unknown {key}_id {ident!r}") from None

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
        from linernotes.domain.prompts import EXPLANATION_SCHEMA

        req = {"model": model, "messages": self.messages(item, listener), "max_tokens": max_tokens,
               "temperature": temperature,
               "response_format": {"type": "json_schema",
                                   "json_schema": {"name": "liner_note", "schema": EXPLANATION_SCHEMA}}}
        if seed is not None:
            req["seed"] = seed
        return req

    def judge(self, item: Item, listener: Listener, text: str | None) -> dict[str, Any]:
        """Parse the engine's text and run the gates; the response body minus timing/usage."""
        from linernotes.domain.gates import run_gates
        from linernotes.domain.parsing import parse_explanation

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


def _errors(exc: ValidationError, key: str) -> str:
    """'listener.country: String should have at most 64 characters; ...' (field paths and
    messages only: never the offending value, which may be 200k characters)."""
    parts = []
    errors = exc.errors(include_input=False, include_url=False)
    for err in errors[:MAX_ERRORS_SHOWN]:
        where = ".".join([key, *(str(p) for p in err.get("loc", ()))])
        parts.append(f"{where}: {err.get('msg')}")
    more = len(errors) - MAX_ERRORS_SHOWN
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
