"""The bad-row rules for catalog values (each one is documented, with what it
does, in the `synth.catalog.common` docstring): text screening, placeholders,
ISBN check digits, plausible years, and the content key duplicates are compared on.

`screen(value, field, res)` returns (cleaned value, problem or None); a problem
is (field, 'field: what is wrong', rule id) and means the row is quarantined.
Cleaning is counted per rule in `res.cleaned`.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any

Problem = tuple[str, str, str]  # (field, "field: message", rule)

_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_SPACE_LIKE = re.compile("[\t\n\r\x0b\x0c\x85\u2028\u2029]+")
_C0 = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
_C1 = re.compile("[\x80-\x84\x86-\x9f]")
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069"
                        "\ufeff\ufff9-\ufffb]")
_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>", re.S)
_ACTIVE = re.compile(r"<\s*/?\s*(?:script|iframe|object|embed|style|svg|form|meta|link|base)\b"
                     r"|(?:java|vb)script\s*:\s*(?:alert|eval|document|window|void|fetch|location|prompt|confirm|\()"
                     r"|<[^>]*\son[a-z]+\s*=", re.I)  # 'JavaScript: The Definitive Guide' is a real title

# Text addressed to a model. Kept specific: the full catalogs have titles such as
# "The Market System: ...", "You are now entering the human heart", "Reckless Disregard".
_ORDER = (r"(?:you\b|ignore|obey|new\b|override|respond|reply|answer|always|never|from now|forget"
          r"|disregard|do not|don't|act\b|pretend|print|output|say\b|write\b|reveal|follow)")
INSTRUCTION_PATTERNS: list[tuple[str, re.Pattern]] = [(label, re.compile(rx, re.I)) for label, rx in [
    ("chat-template token", r"<\|[^<>|]{0,40}\|>|\[/?INST\]|<</?SYS>>|</?(?:tool_call|tool_response|think"
                            r"|start_of_turn|end_of_turn|function_call|im_start|im_end|endoftext|eot_id"
                            r"|repo_name|reponame|file_sep|filename|gh_stars|issue_start|issue_comment"
                            r"|issue_closed|jupyter_\w+|empty_output)>|<\|(?:im_start|im_end|endoftext|fim_\w+)"),
    ("role prefix", r"(?:^|[\n.!?;>\]\)}|\"']\s*)(?:system|assistant|developer)\s*:"
                    r"|^\W*user\s*:|\b(?:system|assistant|developer)\s*:\s*" + _ORDER),
    ("override order", r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+|your\s+"
                       r"|of\s+|every\s+|these\s+|those\s+)*(?:previous|prior|above|earlier|preceding"
                       r"|original|system|developer|safety)\s+(?:\w+\s+)?(?:instructions?|prompts?|directions"
                       r"|rules|guidelines|messages|context|commands|text|orders)"
                       r"|\b(?:ignore|disregard)\s+(?:all|your|any)\s+(?:instructions|rules|guidelines)"),
    ("persona switch", r"\byou\s+are\s+now\s+(?:an?\s+)?(?:dan|ai|assistant|language model|chatbot|chatgpt"
                       r"|gpt|unrestricted|uncensored|jailbroken|evil|free|no longer|in\s+\w+\s+mode"
                       r"|acting|going to|my|different)"
                       r"|\bfrom\s+now\s+on,?\s+(?:you|ignore|always|only|respond|reply|answer)\b"
                       r"|\b(?:developer|dan|jailbreak|god)\s+mode\b|\bdo\s+anything\s+now\b"
                       r"|\b(?:act|behave)\s+as\s+(?:an?\s+)?(?:ai|assistant|dan|unrestricted|uncensored)\b"
                       r"|\bpretend\s+(?:you\s+are|to\s+be)\s+(?:an?\s+)?(?:ai|assistant|dan|unrestricted)\b"),
    ("new instructions", r"\b(?:new|updated|real|actual|hidden|secret)\s+instructions?\s*:"
                         r"|###\s*(?:instruction|system|response)\b"
                         r"|\b(?:reveal|print|show|repeat|output|leak)\s+(?:me\s+)?(?:your|the)\s+(?:system\s+)?"
                         r"(?:prompt|instructions)\b|\b(?:respond|reply|answer)\s+only\s+with\b"
                         r"|\bdo\s+not\s+(?:follow|obey)\s+(?:the|your|any)\b|\bprompt\s+injection\b"),
]]

# Cheap pre-filter: values with none of these need no screening (most of 800k values).
_SUSPECT = re.compile(
    "[&<>\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb"
    r"\[#:|]|javascript|ignore|disregard|forget|override|bypass|you\s+are\s+now|from\s+now\s+on|instruction"
    r"|prompt|mode\b|anything\s+now|act\s+as|behave\s+as|pretend|do\s+not", re.I)


def _c1(match: re.Match) -> str:
    """Latin-1-decoded Windows-1252 punctuation ('\\x92' -> '’'); true controls dropped."""
    try:
        return match.group(0).encode("latin-1").decode("cp1252")
    except UnicodeDecodeError:
        return ""


def find_instruction(text: str) -> tuple[str, str] | None:
    """(label, matched text) of the first instruction-like pattern, or None."""
    folded = unicodedata.normalize("NFKC", text)  # fullwidth 'ｓｙｓｔｅｍ' -> 'system'
    for label, rx in INSTRUCTION_PATTERNS:
        m = rx.search(folded)
        if m:
            return label, m.group(0).strip()
    return None


def screen(value: Any, field: str, res: Any = None) -> tuple[str | None, Problem | None]:
    """Clean one text value by the rules; (value, None) or (value, problem)."""
    if value is None:
        return None, None
    v = value if isinstance(value, str) else str(value)
    if not _SUSPECT.search(v):
        return v.strip() or None, None

    def count(rule: str, before: str, after: str) -> str:
        if res is not None and before != after:
            res.clean(rule)
        return after

    if "&" in v and _ENTITY.search(v):
        new = v
        for _ in range(3):  # '&amp;lt;script&amp;gt;' is still a script tag
            nxt = html.unescape(new)
            if nxt == new:
                break
            new = nxt
        v = count("html-entity", v, new)
    v = count("control-char", v, _C1.sub(_c1, _C0.sub("", _SPACE_LIKE.sub(" ", _ANSI.sub("", v)))))
    # a soft hyphen in these sources stands for a real one ('Sidonie\u00adGabrielle Colette')
    v = count("invisible-char", v, _INVISIBLE.sub("", v.replace("\u00ad", "-")))
    m = _ACTIVE.search(v)
    if m:
        return v, (field, f"{field}: active HTML/script content ({m.group(0)[:40]!r})", "active-html")
    hit = find_instruction(v)
    if hit:
        label, text = hit
        return v, (field, f"{field}: instruction-like text ({label}: {text[:60]!r})", "instruction-like")
    if "<" in v:
        v = count("html-tag", v, re.sub(r" {2,}", " ", _TAG.sub(" ", v)).replace(" ,", ","))
    return v.strip() or None, None


def screen_many(values: list[Any], field: str, res: Any = None) -> tuple[list[str | None], dict[int, Problem]]:
    """`screen` over a column: cleaned values and {index: problem}."""
    out: list[str | None] = []
    problems: dict[int, Problem] = {}
    for i, v in enumerate(values):
        clean, problem = screen(v, field, res)
        out.append(clean)
        if problem:
            problems[i] = problem
    return out, problems


# --------------------------------------------------------------------------- placeholders


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", text.casefold()).split())


PLACEHOLDER_CREATORS = frozenset(_norm(x) for x in (
    "unknown", "unknown author", "author unknown", "unknown artist", "artist unknown", "anonymous",
    "anon", "anonimo", "anónimo", "anonyme", "anonym", "anonymus", "not applicable (na )",
    "not applicable", "n/a", "na", "none", "null", "nil", "undefined", "various", "various authors",
    "no author", "tbd", "tba", "xxx", "test", "author", "?",
))
PLACEHOLDER_TITLES = frozenset(_norm(x) for x in (
    "unknown", "unknown title", "n/a", "na", "null", "none", "nil", "undefined", "tbd", "tba", "test",
    "title", "no title", "untitled book", "?",
))


def is_placeholder_creator(value: str | None) -> bool:
    return value is not None and _norm(value) in PLACEHOLDER_CREATORS


def placeholder_title(value: str | None, field: str = "title") -> Problem | None:
    if value is not None and value.strip() and _norm(value) in PLACEHOLDER_TITLES:
        return field, f"{field}: {value!r} is a placeholder, not a title", "placeholder-title"
    return None


# --------------------------------------------------------------------------- ids, years, duplicates


def valid_isbn(isbn: str) -> bool:
    """ISBN-10 (last digit may be X) or ISBN-13 (978/979) with a correct check digit."""
    if len(isbn) == 10 and isbn[:9].isdigit() and (isbn[9].isdigit() or isbn[9] == "X"):
        total = sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(isbn))
        return total % 11 == 0
    if len(isbn) == 13 and isbn.isdigit() and isbn[:3] in ("978", "979"):
        return sum((1 if i % 2 == 0 else 3) * int(c) for i, c in enumerate(isbn)) % 10 == 0
    return False


def isbn_problem(isbn: str) -> Problem | None:
    if valid_isbn(isbn):
        return None
    return ("item_id", f"item_id: {isbn[:40]!r} is not an ISBN-10/13 with a valid check digit",
            "invalid-isbn")


def year_problem(year: int | None, first: int, last: int, why_last: str) -> Problem | None:
    """Plausibility beyond the schema's 1000..2026 (those get the schema message)."""
    if year is None or year < 1000 or year > 2026:
        return None
    if year < first:
        return ("year", f"year: {year} is before {first} (no printed edition; another calendar?)",
                "implausible-year")
    if year > last:
        return "year", f"year: {year} is after {last} ({why_last})", "implausible-year"
    return None


def content_key(*values: Any) -> tuple:
    """What two rows with one id are compared on: case, spacing and punctuation ignored."""
    return tuple(_norm(str(v)) if v is not None else "" for v in values)


def conflict(field: str, id_text: str, other_row: Any) -> Problem:
    return (field, f"{field}: {id_text} is also on row {other_row} with different content "
                   "(conflicting duplicate; neither row is used)", "conflicting-duplicate")
