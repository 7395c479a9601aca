"""The revision prompt: a failing liner note + the gates' reasons -> chat messages.

Loaded from a versioned template (templates/revise_v1.yaml). The system turn is
the template's fixed instructions (it depends only on the template and the item
type); the catalog facts, the previous answer and the gates' reasons are data,
placed in one JSON block in the user turn. Every string in that block has
chat-template control tokens broken (`clean_field_text`, the rule prompts.py
applies to catalog text) and delimiter look-alikes neutralised, so neither a
catalog value nor the teacher's own earlier output can close the block or
speak as the system. tests/test_synth_revise.py checks both.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from linernotes.domain.prompts import ITEM_NOUN, TEMPLATES_DIR, PromptTemplate, listener_context
from linernotes.records import Item, Listener, clean_field_text

DEFAULT_REVISE_TEMPLATE = TEMPLATES_DIR / "revise_v1.yaml"
# Bounds on what goes back to the teacher: a looping answer must not blow the context.
MAX_PREVIOUS_CHARS = 600
MAX_PROBLEMS = 8
MAX_PROBLEM_CHARS = 240
_DELIMITER = re.compile(r"(END_)?(CATALOG|REVISION)_DATA", re.IGNORECASE)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _DELIMITER.sub("data-block", clean_field_text(value))
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {str(_clean(k)): _clean(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class RevisePrompt(PromptTemplate):
    """The revision template: same fields, versioning and loading as the note template."""

    KIND = "revision template"
    PLACEHOLDER = "{revision_data}"

    @classmethod
    def default_path(cls) -> Path:
        return DEFAULT_REVISE_TEMPLATE

    def system_message(self, item_type: str) -> str:
        return self.system.format(item_noun=ITEM_NOUN.get(item_type, "item"), max_words=self.max_words)

    def revision_data(self, item: Item, listener: Listener, previous: Any,
                      problems: list[tuple[str, str]]) -> str:
        """The user turn's JSON block. previous: the parsed answer (dict) or the raw text
        that did not parse; problems: (gate, reason) pairs, the reason's quoted spans kept."""
        if isinstance(previous, str):
            previous = previous[:MAX_PREVIOUS_CHARS]
        payload = {
            "recommended_item": _clean(item.facts()),
            "listener": _clean(listener_context(listener)),
            "previous_answer": _clean(previous),
            "problems": [{"check": _clean(gate), "reason": _clean(str(reason)[:MAX_PROBLEM_CHARS])}
                         for gate, reason in problems[:MAX_PROBLEMS]],
        }
        return json.dumps(payload, ensure_ascii=False)

    def messages(self, item: Item, listener: Listener, previous: Any,
                 problems: list[tuple[str, str]]) -> list[dict[str, str]]:
        # str.replace, not format: the data may contain braces.
        user = self.user.replace("{revision_data}",
                                 self.revision_data(item, listener, previous, problems))
        return [{"role": "system", "content": self.system_message(item.item_type)},
                {"role": "user", "content": user}]
