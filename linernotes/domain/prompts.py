"""Versioned prompt template + editors' golden few-shot examples -> chat messages.

Catalog text is data, never instructions: every catalog or listener value is
placed inside one JSON block (so quotes, newlines and braces are escaped), any
text that imitates the block's delimiters is neutralised, and chat-template
control tokens (`<|im_start|>`, `<|endoftext|>`, `<tool_call>`, ...) are broken
with a visible space (`linernotes.records.clean_field_text`, the same rule the
record types apply) so the tokenizer never sees a special token inside the data. The instruction
parts of the request (system message, the user text around the block, the
few-shot turns) depend only on the template, the item type, the examples and
(for which examples) a hash of the item id, never on catalog text;
tests/test_prompts.py checks exactly that.

Few-shot turns come from the row's own item type only (a book note never sees
a song's example), and which of that type's examples is rotated per row by a
hash of the item id when rotate_shots is on (off by default: a fixed per-type prefix is
what the teacher server's prompt cache reuses, ~2x faster per accepted note).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from linernotes.records import Item, Listener, clean_field_text

TEMPLATES_DIR = Path(__file__).parent / "templates"
DEFAULT_TEMPLATE = TEMPLATES_DIR / "explain_v1.yaml"
DEFAULT_GOLDEN = Path(__file__).parent / "data" / "golden_examples.yaml"

ITEM_NOUN = {"music": "song", "book": "audiobook", "podcast": "podcast"}
MAX_HISTORY = 5
# JSON schema the backends enforce where they support structured output.
# The length bounds matter: a small teacher can loop inside a JSON string until
# max_tokens cuts it off, which leaves unparseable JSON. 240 chars is ~45 words,
# room for the 30-word rule to be judged by the style gate rather than the grammar.
EXPLANATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "explanation": {"type": "string", "minLength": 1, "maxLength": 240},
        "facts_used": {"type": "array", "maxItems": 5,
                       "items": {"type": "string", "maxLength": 60}},
    },
    "required": ["explanation", "facts_used"],
}
_DELIMITER = re.compile(r"(END_)?CATALOG_DATA", re.IGNORECASE)


@dataclass(frozen=True)
class PromptTemplate:
    version: str
    system: str
    user: str
    path: Path
    max_words: int = 30

    # what `load` checks and names in its errors (revise_prompt.RevisePrompt sets its own)
    KIND = "prompt template"
    PLACEHOLDER = "{catalog_data}"

    @property
    def version_id(self) -> str:
        """'<version>@<content hash>': changes whenever the file changes."""
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()[:8]
        return f"{self.version}@{digest}"

    @classmethod
    def load(cls, path: str | Path | None = None, max_words: int = 30):
        path = Path(path) if path else cls.default_path()
        data = yaml.safe_load(path.read_text()) or {}
        missing = [k for k in ("version", "system", "user") if k not in data]
        if missing:
            raise ValueError(f"{cls.KIND} {path}: missing keys {missing}")
        if cls.PLACEHOLDER not in data["user"]:
            raise ValueError(f"{cls.KIND} {path}: user text must contain {cls.PLACEHOLDER}")
        return cls(version=str(data["version"]), system=data["system"], user=data["user"],
                   path=path, max_words=max_words)

    @classmethod
    def default_path(cls) -> Path:
        return DEFAULT_TEMPLATE


@dataclass(frozen=True)
class GoldenExample:
    item_type: str
    item: dict[str, Any]
    listener: dict[str, Any]
    answer: dict[str, Any]
    id: str | None = None  # the catalog item it was written for (never a shot for that item)


def load_golden(path: str | Path | None = None) -> list[GoldenExample]:
    path = Path(path) if path else DEFAULT_GOLDEN
    raw = yaml.safe_load(path.read_text()) or []
    examples = []
    for i, entry in enumerate(raw):
        try:
            answer = entry["answer"]
            if not isinstance(answer.get("explanation"), str):
                raise KeyError("answer.explanation")
            examples.append(GoldenExample(entry["item_type"], entry["item"],
                                          entry.get("listener", {}), answer, entry.get("id")))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"golden examples {path}: entry {i} lacks {exc}") from exc
    return examples


def _clean(value: Any) -> Any:
    """Neutralise delimiter look-alikes and control tokens inside catalog values
    (recursively). Records are already cleaned; this also covers dict-shaped
    values (golden examples, inline facts) that never went through a record."""
    if isinstance(value, str):
        return _DELIMITER.sub("catalog-data", clean_field_text(value))
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def listener_context(listener: Listener, max_history: int = MAX_HISTORY) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    if listener.country:
        ctx["country"] = listener.country
    if listener.age_band:
        ctx["age_band"] = listener.age_band
    history = []
    for entry in listener.history[:max_history]:
        h: dict[str, Any] = {"title": entry.title}
        if entry.creator:
            h["creator"] = entry.creator
        if entry.genres:
            h["genres"] = entry.genres
        history.append(h)
    if history:
        ctx["recent_history"] = history
    if listener.taste:
        ctx["taste"] = listener.taste
    return ctx


def catalog_block(item_facts: dict[str, Any], listener_ctx: dict[str, Any]) -> str:
    payload = {"recommended_item": _clean(item_facts), "listener": _clean(listener_ctx)}
    # Compact: every token of the prompt costs prefill time on a CPU teacher.
    return json.dumps(payload, ensure_ascii=False)


@dataclass
class PromptBuilder:
    template: PromptTemplate
    golden: list[GoldenExample] = field(default_factory=list)
    few_shot: int = 2
    # Off by default: one fixed prefix per type is what llama.cpp's prompt cache reuses;
    # measured (bench/synth_throughput.py --variants, 1.5B teacher) 29 vs 54 s per passing note.
    rotate_shots: bool = False

    @classmethod
    def default(cls, template_path=None, golden_path=None, few_shot: int = 2,
                max_words: int = 30) -> "PromptBuilder":
        return cls(PromptTemplate.load(template_path, max_words), load_golden(golden_path), few_shot)

    @classmethod
    def zero_shot(cls, template_path=None, max_words: int = 30) -> "PromptBuilder":
        """[system, user] only: the prompt the student is fine-tuned on, evaluated and served with."""
        return cls(PromptTemplate.load(template_path, max_words), [], 0)

    def examples_for(self, item_type: str, item_id: str | None = None) -> list[GoldenExample]:
        """`few_shot` examples of item_type only (fewer if it has fewer; none of another type).

        With rotate_shots, a window over that type's examples starts at a hash of
        item_id, so rows see different (deterministic) shots; the example written
        for item_id itself is never one of them."""
        same = [g for g in self.golden if g.item_type == item_type and (item_id is None or g.id != item_id)]
        if not same or self.few_shot <= 0:
            return []
        start = 0
        if self.rotate_shots and item_id is not None:
            start = int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:4], "big") % len(same)
        return [same[(start + i) % len(same)] for i in range(min(self.few_shot, len(same)))]

    def system_message(self, item_type: str) -> str:
        return self.template.system.format(item_noun=ITEM_NOUN.get(item_type, "item"),
                                           max_words=self.template.max_words)

    def user_message(self, item_facts: dict[str, Any], listener_ctx: dict[str, Any]) -> str:
        # str.replace, not format: catalog text may contain braces.
        return self.template.user.replace("{catalog_data}", catalog_block(item_facts, listener_ctx))

    def messages(self, item: Item, listener: Listener) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system_message(item.item_type)}]
        for ex in self.examples_for(item.item_type, item.item_id):
            msgs.append({"role": "user", "content": self.user_message(ex.item, ex.listener)})
            msgs.append({"role": "assistant",
                         "content": json.dumps(ex.answer, ensure_ascii=False)})
        msgs.append({"role": "user", "content": self.user_message(item.facts(), listener_context(listener))})
        return msgs
