"""The teacher's (or the tuned student's) answer -> {"explanation", "facts_used"}.

One parser for synth, eval and the endpoint, so a row is judged the same way
wherever it was generated.
"""

from __future__ import annotations

import json
from typing import Any


def parse_explanation(text: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """Parse the teacher's JSON answer; tolerate prose around one JSON object.

    Returns (parsed, error). Parsed has a non-empty 'explanation' str and a
    'facts_used' list of str.
    """
    if text is None:
        return None, "no output from teacher"
    candidate = text.strip()
    data: Any = None
    try:
        data = json.loads(candidate)
    except json.JSONDecodeError:
        start, end = candidate.find("{"), candidate.rfind("}")
        if start >= 0 and end > start:
            try:
                data = json.loads(candidate[start:end + 1])
            except json.JSONDecodeError as exc:
                return None, f"invalid JSON: {exc.msg} at char {exc.pos}"
        else:
            return None, "no JSON object in output"
    if not isinstance(data, dict):
        return None, f"JSON is a {type(data).__name__}, not an object"
    explanation = data.get("explanation")
    if not isinstance(explanation, str) or not explanation.strip():
        return None, "field 'explanation' missing or empty"
    facts = data.get("facts_used", [])
    if not isinstance(facts, list):
        facts = [facts]
    return {"explanation": explanation.strip(),
            "facts_used": [str(f) for f in facts if f not in (None, "")]}, None
