"""The tally every grounding claim check adds to: supported claims, reasons (each
quoting its failing span) and the supported name mentions later checks read."""

from __future__ import annotations

import re

from linernotes.domain.gates.tokens import Tok


class Claims:
    def __init__(self) -> None:
        self.total = 0
        self.reasons: list[str] = []
        # supported name mentions: (first token index, end token index, name key), for
        # the relation, listener and usefulness checks that run after the name checks
        self.mentions: list[tuple[int, int, str]] = []

    def ok(self) -> None:
        self.total += 1

    def bad(self, reason: str) -> None:
        self.total += 1
        if reason not in self.reasons:
            self.reasons.append(reason)


def span_text(text: str, toks: list[Tok]) -> str:
    shown = text[toks[0].start:toks[-1].end]
    return re.sub(r"['’]s$", "", shown)



def clause(text: str, start: int, end: int, width: int = 30) -> str:
    """The words around a span, for quoting a failing claim in a reason."""
    lo = max(0, start - width)
    hi = min(len(text), end + width)
    left = text[lo:start].split(None, 1)[-1] if lo > 0 and " " in text[lo:start] else text[lo:start]
    right = text[end:hi].rsplit(None, 1)[0] if hi < len(text) and " " in text[end:hi] else text[end:hi]
    return (left + text[start:end] + right).strip(" ,;")
