"""Style gate: length, one sentence, end punctuation, emoji, second person,
shouting, leftover markup and meta talk. Thresholds are the constants below."""

from __future__ import annotations

import re
from collections.abc import Iterable

from linernotes.records import GateResult
from linernotes.domain.gates.normalize import ABBREVIATIONS, NO_EXPLANATION

MAX_WORDS = 30              # words = runs of letters/digits ("AC/DC", "eight-minute" count once)
MAX_SENTENCES = 1           # exactly one sentence
REQUIRE_END_PUNCTUATION = True  # the sentence ends with . ! ? or … (before closing quotes/emoji)
MAX_EMOJI = 1               # more is "emoji spam"
MAX_SECOND_PERSON = 2       # you / your / you're / yours / yourself ...
MAX_ACRONYM_LETTERS = 4     # an all-caps word up to 4 letters is an acronym (UK, USA, INXS)
MAX_UNKNOWN_ACRONYMS = 1    # two or more all-caps words that are neither known acronyms nor
                            # item/listener names count as shouting ("LOVE THIS")

KNOWN_ACRONYMS = frozenset("""
UK US USA EU UN AC DC BBC NPR MTV VH TV DJ DJS MC LP EP CD CDS DVD FM AM PM NYC LA NBA NFL MLB NHL
PBS CNN HBO ABC NBC CBS ESPN REM KRS UB RB OK ID YA AI LGBT LGBTQ ASMR BPM VIP II III IV VI VII
VIII IX XI XII NASA FBI CIA JFK MLK RNB EDM EP ATL UFO
""".split())
_SECOND_PERSON = frozenset({"you", "your", "yours", "yourself", "yourselves", "you're", "youre",
                            "you've", "youve", "you'll", "youll", "you'd", "youd", "ya", "y'all",
                            "yall", "thee", "thou", "thy"})
_WORD_RE = re.compile(r"[^\W_]+(?:['’\-./&][^\W_]+)*\.?")
EMOJI_RE = re.compile(
    "[\U0001F1E6-\U0001F1FF]{2}"
    "|[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\u2300-\u23FF\u3030\u303D\u3297\u3299"
    "\u203C\u2049\u2139\u24C2\u25AA-\u25FE]\uFE0F?[\U0001F3FB-\U0001F3FF]?"
    "(?:\u200D[\U0001F300-\U0001FAFF\u2600-\u27BF]\uFE0F?[\U0001F3FB-\U0001F3FF]?)*")
_MARKUP = [
    (re.compile(r"[{}]"), "leftover JSON/markup: braces"),
    (re.compile(r'"\s*\w+\s*"\s*:'), "leftover JSON/markup: a JSON key"),
    (re.compile(r"<\|[^|>]*\|>|</?[A-Za-z][\w-]*(?:\s[^<>]*)?/?>"), "leftover JSON/markup: a tag"),
    (re.compile(r"`"), "leftover JSON/markup: backticks"),
    (re.compile(r"\*\*|__|~~"), "leftover JSON/markup: markdown emphasis"),
    (re.compile(r"^\s*(?:#{1,6}\s|[-*•]\s|\d+[.)]\s)"), "leftover JSON/markup: heading or list marker"),
    (re.compile(r"\[(?:artist|title|album|author|genre|year|name|listener|user|song|book|podcast|"
                r"creator|insert)[^\]]*\]", re.IGNORECASE), "leftover JSON/markup: a [placeholder]"),
    (re.compile(r"\\[nt\"]"), "leftover JSON/markup: an escape sequence"),
    (re.compile(r"\b(?:facts_used|explanation)\b\s*[:=]", re.IGNORECASE), "leftover JSON/markup: a field label"),
]
_META = [
    re.compile(r"\bas an ai\b", re.IGNORECASE),
    re.compile(r"\b(?:large )?language model\b", re.IGNORECASE),
    re.compile(r"^\W*(?:sure|certainly|of course|okay|ok|absolutely)\b\s*[,!.:]", re.IGNORECASE),
    re.compile(r"^\W*here(?:'s|’s| is| are)\b", re.IGNORECASE),
    re.compile(r"\bhere(?:'s|’s| is) (?:a|an|the|your|my) (?:one-sentence |short |brief |personali[sz]ed )?"
               r"(?:recommendation|explanation|sentence|liner note|response|answer|note)\b", re.IGNORECASE),
    re.compile(r"^\W*(?:liner note|explanation|recommendation|answer|output)\s*:", re.IGNORECASE),
    re.compile(r"\bi hope (?:this|that) helps\b", re.IGNORECASE),
    re.compile(r"\blet me know\b", re.IGNORECASE),
    re.compile(r"\bi(?:'m| am) (?:sorry|unable|not able)\b", re.IGNORECASE),
    re.compile(r"\bi (?:cannot|can't|can not)\b", re.IGNORECASE),
    re.compile(r"\b(?:the |based on the )?(?:provided|given) (?:facts|metadata|context|data|information|catalog)\b",
               re.IGNORECASE),
    re.compile(r"\bcatalog[_ ]data\b", re.IGNORECASE),
]


def count_words(text: str) -> int:
    return len(_WORD_RE.findall(text))


def count_sentences(text: str) -> int:
    """Sentences by terminal punctuation, not counting initials ("P. O."),
    abbreviations ("Vol.", "feat."), dotted acronyms ("R.E.M.") or an ellipsis
    followed by a lower-case word."""
    if not text.strip():
        return 0
    count, last = 1, 0
    for m in re.finditer(r"[.!?…]+[\"'”’)\]]*(?=\s)", text):
        rest = text[m.end():].strip()
        if not rest:
            break
        punct = m.group()
        before = text[last:m.start()]
        wm = re.search(r"([^\W_][\w.'’\-]*)$", before)
        word = wm.group(1) if wm else ""
        if punct.startswith(".") and not punct.startswith(".."):
            if (len(word) == 1 and word.isalpha()) or word.lower() in ABBREVIATIONS or "." in word:
                continue
        if (punct.startswith("..") or punct.startswith("…")) and rest[:1].islower():
            continue
        count += 1
        last = m.end()
    return count


def style_gate(explanation: str | None, allowed_names: Iterable[str] = ()) -> GateResult:
    """Length, one sentence, emoji, second person, shouting, markup, meta talk.
    `allowed_names` (item/listener names) may be all-caps without counting as shouting."""
    if explanation is None:
        return GateResult(passed=False, reasons=[NO_EXPLANATION], score=0.0)
    text = explanation
    reasons: list[str] = []
    if not text.strip():
        return GateResult(passed=False, reasons=["empty explanation"], score=0.0)
    n_words = count_words(text)
    if n_words > MAX_WORDS:
        reasons.append(f"{n_words} words (max {MAX_WORDS})")
    if "\n" in text.strip():
        reasons.append("contains a line break")
    n_sent = count_sentences(text)
    if n_sent > MAX_SENTENCES:
        reasons.append(f"{n_sent} sentences (must be exactly {MAX_SENTENCES})")
    if REQUIRE_END_PUNCTUATION:
        tail = re.sub(r"[\s\"'”’)\]]+$", "", EMOJI_RE.sub("", text).rstrip())
        if tail and tail[-1] not in ".!?…":
            reasons.append("does not end with sentence punctuation (. ! ?)")
    n_emoji = len(EMOJI_RE.findall(text))
    if n_emoji > MAX_EMOJI:
        reasons.append(f"{n_emoji} emoji (max {MAX_EMOJI})")
    words = [w.lower().replace("’", "'").rstrip(".") for w in _WORD_RE.findall(text)]
    n_you = sum(1 for w in words if w in _SECOND_PERSON)
    if n_you > MAX_SECOND_PERSON:
        reasons.append(f"second person used {n_you} times (max {MAX_SECOND_PERSON})")
    exempt = {w for name in allowed_names if name for w in re.findall(r"[^\W\d_]+", name) if w.isupper()}
    shouting, unknown = [], []
    for w in re.findall(r"[^\W\d_]{2,}", text):
        if not w.isupper() or w in exempt or w in KNOWN_ACRONYMS:
            continue
        if len(w) > MAX_ACRONYM_LETTERS:
            shouting.append(w)
        else:
            unknown.append(w)
    if shouting or len(unknown) > MAX_UNKNOWN_ACRONYMS:
        reasons.append(f"ALL-CAPS shouting: {' '.join((shouting + unknown)[:5])}")
    for rx, reason in _MARKUP:
        if rx.search(text) and reason not in reasons:
            reasons.append(reason)
    for rx in _META:
        m = rx.search(text)
        if m:
            reasons.append(f'meta talk: "{m.group(0).strip()}"')
            break
    score = max(0.0, 1.0 - 0.25 * len(reasons))
    return GateResult(passed=not reasons, reasons=reasons, score=score)
