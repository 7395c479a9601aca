"""A second opinion for the grounding gate: the embedded teacher as a claim verifier.

The rules (linernotes/domain/gates/) decide every row. The verifier only looks at rows the
rules passed but are *unsure* of (`unsure_reasons`: cheap signals computed here), asks the
teacher whether each sentence is supported by the item facts and the listener view, and
can only turn a grounding pass into a fail, never the other way round:

    verdict = verify_claims(note, item, listener, endpoint)    # -> VerifierVerdict
    grounding = apply_verdict(gates["grounding"], verdict)

Catalog text and the note are data: they go into one JSON block between CATALOG_DATA
markers, with control tokens broken (`linernotes.records.clean_field_text`) and marker
look-alikes neutralised, the same rule as linernotes/domain/prompts.py. The answer is
grammar-constrained JSON (`verify_schema`): per sentence an unsupported span, a reason and
a boolean. A flag counts only when its span is in the sentence and holds a word the
selector could not trace to the facts (a small model also "flags" true facts); an
answer that does not parse is an `error` verdict and the row keeps its rules verdict.

Calls go through the call cache (synth/cache.py) keyed like the teacher's calls, so a
rerun of an evaluation costs nothing. Measured in synth/verify_eval.py.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from linernotes.domain.prompts import TEMPLATES_DIR, listener_context
from linernotes.records import GateResult, Item, Listener, clean_field_text

DEFAULT_VERIFY_TEMPLATE = TEMPLATES_DIR / "verify_v1.yaml"
MAX_SENTENCES = 4          # notes are <= 3 sentences (style gate); more is not a note
MAX_SPAN_CHARS = 100
MAX_REASON_CHARS = 120
VERIFY_MAX_TOKENS = 200    # enough for 3 sentences of reason + span; keeps CPU calls short
VERIFIER_PREFIX = "verifier:"
# A flag must point at a claim: a small teacher that cannot decide "flags" the whole
# sentence, which says nothing (measured on dev/dev2: those were true notes as often as not).
MAX_FLAG_WORDS = 8
MAX_FLAG_SHARE = 0.6  # reasons the verifier adds start with this

_DELIMITER = re.compile(r"(END_)?CATALOG_DATA", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_DIGIT = re.compile(r"\d")
_POSSESSIVE = re.compile(r"[^\W_]['’]s\b")

# Function words and the generic vocabulary of a recommendation note: never a claim on
# their own. Kept short on purpose: a word missing here only sends a row to the verifier.
STOP_WORDS = frozenset("""
a an the and or but nor so yet if then than that this these those there here it its it's
is are was were be been being am do does did done has have had having will would can could
shall should may might must of in on at to for from by with without into onto over under
about above after before between through during against among around along across behind
beyond near off out up down as like such just also too very more most much many few less
least only even still again ever never always often sometimes already not no yes all any
each every both either neither some other another same own what which who whom whose when
where why how while until because since though although whether
i me my mine you your yours yourself we us our they them their he him his she her hers
one ones thing things way ways kind sort bit lot lots plenty something anything everything
fan fans listener listeners reader readers listen listening listened read reading reads
hear heard play plays played playing pick picks choice recommendation recommended recommend
fit fits fitting suit suits suited match matches matching pair pairs paired sits sit
taste tastes history histories queue shelf list library rotation mix next new
good great fine nice solid strong easy natural perfect ideal worth welcome right
love loves loved like likes liked enjoy enjoys enjoyed want wants need needs try give gives
keep keeps bring brings brought take takes make makes made get gets got go goes going
song songs track tracks album albums record music book books audiobook audiobooks novel
novels story stories podcast podcasts show shows episode episodes listen title titles
author authors artist artists band bands writer writers host hosts creator series
same similar familiar another more further kind style styles sound sounds voice
already recently recent lately current today now long short quick little big
minute minutes hour hours someone anyone everyone people person listen reader's
""".split())

NUMBER_WORDS = frozenset("""
one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety
hundred thousand million millions billion first second third fourth fifth sixth seventh
eighth ninth tenth dozen half
""".split())


# ------------------------------------------------------------------ the unsure selector

def _key(word: str) -> str:
    from linernotes.domain.gates import fold

    w = fold(word).lower().replace("’", "'")
    return w[:-2] if w.endswith("'s") else w


def _stem_variants(key: str) -> set[str]:
    """A word and its plain inflections, so 'novels' traces to 'novel' and back."""
    out = {key}
    for suffix in ("s", "es", "ed", "ing", "ly", "er", "ers"):
        if key.endswith(suffix) and len(key) - len(suffix) >= 3:
            out.add(key[: -len(suffix)])
    return out


def traceable_words(item: Item, listener: Listener | None) -> set[str]:
    """Word keys a note may use without a claim: the item facts' and listener view's words,
    the gate's common words, and STOP_WORDS / NUMBER_WORDS are *not* in here (numbers are a
    signal of their own)."""
    words: set[str] = set()

    def add(value: Any) -> None:
        if isinstance(value, str):
            for w in _WORD.findall(value):
                words.update(_stem_variants(_key(w)))
        elif isinstance(value, (list, tuple)):
            for v in value:
                add(v)
        elif isinstance(value, dict):
            for v in value.values():
                add(v)
        elif value is not None:
            add(str(value))

    add(item.facts())
    if listener is not None:
        add(listener_context(listener, max_history=len(listener.history)))
    return words


def untraceable_words(note: str, item: Item, listener: Listener | None) -> list[str]:
    """Content words of the note that are neither in the facts, nor function words, nor the
    gate's common words (days, countries, sentence starters, ...), in note order."""
    from linernotes.domain.gates import common_words

    known = traceable_words(item, listener)
    common = common_words()
    out: list[str] = []
    for w in _WORD.findall(note):
        key = _key(w)
        if not key or key.isdigit() or key in NUMBER_WORDS:
            continue
        if key in STOP_WORDS or key in common or _stem_variants(key) & known:
            continue
        if key not in out:
            out.append(key)
    return out


@dataclass
class Unsure:
    """Why the rules' pass on a row is not trusted (empty reasons: trusted)."""
    reasons: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # the untraceable content words

    def __bool__(self) -> bool:
        return bool(self.reasons)


# Words the gate's genre vocabulary holds that say nothing of a genre on their own.
_GENERIC_GENRE_WORDS = frozenset("""
age arts audio band big book call classic classics coming easy family feature film games hard
help high house listening music new novel post radio self slow smooth soft stand stories story
swing time true up world young adult black death middle non picture space trip wave
""".split())
# How many untraceable content words make a note "claim-heavy" on their own: true notes use
# one or two style words ("a long Metal haul", "swaps the riffs"), unsupported topics
# and settings take more ("coaches lash artists on pricing and salon marketing").
MANY_UNTRACEABLE = 3


def _subject_words() -> frozenset[str]:
    from linernotes.domain.gates.vocab import builtin_genre_words

    return frozenset(w for w in builtin_genre_words() if len(w) >= 4) - _GENERIC_GENRE_WORDS - STOP_WORDS


def unsure_reasons(note: str, item: Item, listener: Listener | None,
                   many: int = MANY_UNTRACEABLE) -> Unsure:
    """Cheap signals that a note the rules passed may still state something unsupported:
    a genre/subject word the facts do not hold ("a Bible-inspired fantasy"), a hyphenated
    compound with an untraceable part ("wizard-school"), or `many` untraceable content
    words. Numbers and names are left to the rules (they check them exactly)."""
    out = Unsure(words=untraceable_words(note, item, listener))
    subject = _subject_words()
    genre_like = [w for w in out.words if w in subject]
    if genre_like:
        out.reasons.append("genre/subject words not in the facts: " + ", ".join(genre_like))
    suspicious = set(out.words)
    for m in re.finditer(r"([^\W_]+)-([^\W_]+)", note):
        parts = {_key(m.group(1)), _key(m.group(2))}
        if parts & suspicious:
            out.reasons.append(f"compound {m.group()!r} with an untraceable part")
            break
    if len(out.words) >= many:
        out.reasons.append(f"{len(out.words)} untraceable words: " + ", ".join(out.words[:6]))
    return out


# ------------------------------------------------------------------ prompt

def split_sentences(note: str) -> list[str]:
    """The note's sentences, split where the grounding gate's tokenizer starts one
    (initials and abbreviations do not end a sentence)."""
    from linernotes.domain.gates.tokens import tokenize

    toks = tokenize(note)
    starts = [t.start for t in toks if t.sent_start] or [0]
    starts[0] = 0
    bounds = starts + [len(note)]
    out = [note[a:b].strip() for a, b in zip(bounds, bounds[1:])]
    return [s for s in out if s][:MAX_SENTENCES] or [note.strip()]


def _as_data(value: Any) -> Any:
    """Control tokens broken, CATALOG_DATA look-alikes neutralised (recursively)."""
    if isinstance(value, str):
        return _DELIMITER.sub("catalog-data", clean_field_text(value))
    if isinstance(value, list):
        return [_as_data(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_data(v) for k, v in value.items()}
    return value


def verify_schema(n_sentences: int) -> dict[str, Any]:
    """JSON schema of the answer: exactly one check per sentence."""
    check = {"type": "object",
             # reason first: a small model decides better after naming the facts it checked
             "properties": {"reason": {"type": "string", "maxLength": MAX_REASON_CHARS},
                            "unsupported_span": {"type": "string", "maxLength": MAX_SPAN_CHARS},
                            "supported": {"type": "boolean"}},
             "required": ["reason", "unsupported_span", "supported"]}
    return {"type": "object",
            "properties": {"sentences": {"type": "array", "items": check,
                                         "minItems": n_sentences, "maxItems": n_sentences}},
            "required": ["sentences"]}


@dataclass(frozen=True)
class VerifyPrompt:
    version: str
    system: str
    user: str
    examples: tuple = ()  # ({"data": ..., "answer": ...}, ...): fixed worked turns

    PLACEHOLDER = "{verify_data}"

    @classmethod
    def load(cls, path: str | Path | None = None) -> "VerifyPrompt":
        path = Path(path) if path else DEFAULT_VERIFY_TEMPLATE
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        missing = [k for k in ("version", "system", "user") if k not in data]
        if missing:
            raise ValueError(f"verify template {path}: missing keys {missing}")
        if cls.PLACEHOLDER not in data["user"]:
            raise ValueError(f"verify template {path}: user text must contain {cls.PLACEHOLDER}")
        examples = tuple(data.get("examples") or ())
        for i, ex in enumerate(examples):
            if not isinstance(ex, dict) or not {"data", "answer"} <= set(ex):
                raise ValueError(f"verify template {path}: example {i} needs 'data' and 'answer'")
        return cls(str(data["version"]), data["system"], data["user"], examples)

    def messages(self, sentences: list[str], item: Item, listener: Listener | None) -> list[dict[str, str]]:
        payload = {"item": _as_data(item.facts()),
                   "listener": _as_data(listener_context(listener)) if listener is not None else {},
                   "sentences": [{"n": i + 1, "text": _as_data(s)} for i, s in enumerate(sentences)]}
        msgs = [{"role": "system", "content": self.system}]
        for ex in self.examples:  # template text only: the same prefix for every row
            msgs.append({"role": "user", "content": self._user(ex["data"])})
            msgs.append({"role": "assistant", "content": json.dumps(ex["answer"], ensure_ascii=False)})
        msgs.append({"role": "user", "content": self._user(payload)})
        return msgs

    def _user(self, payload: dict[str, Any]) -> str:
        # str.replace, not format: the data may hold braces.
        return self.user.replace(self.PLACEHOLDER, json.dumps(payload, ensure_ascii=False))


# ------------------------------------------------------------------ endpoint

@dataclass
class Completion:
    text: str | None
    latency_s: float | None = None  # of the call that produced it (also for a cache hit)
    cached: bool = False
    error: str | None = None


class VerifierEndpoint(Protocol):
    """What verify_claims needs: one chat call with a JSON schema."""
    name: str

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any],
                 max_tokens: int) -> Completion: ...


@dataclass
class CachedChatEndpoint:
    """An OpenAI-compatible chat endpoint (llama.cpp, vLLM, hosted) behind the call cache.
    `identity` is synth.cache.model_identity of the served model (its file's fingerprint
    for a server we started), so another model under the same name is a different key."""
    base_url: str
    model: str
    cache_path: str | Path
    identity: str = ""
    api_key: str = "none"
    backend: str = "llamacpp"
    run_id: str | None = None
    timeout_s: float = 300.0
    name: str = "teacher"

    def __post_init__(self) -> None:
        from synth.cache import CallCache, model_identity

        self.identity = self.identity or model_identity(base_url=self.base_url, model=self.model)
        self._cache = CallCache(self.cache_path)
        self._client = None

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any],
                 max_tokens: int) -> Completion:
        from synth.cache import call_key

        sampling = {"max_tokens": max_tokens, "temperature": 0.0, "top_p": 1.0, "seed": 0,
                    "purpose": "verify"}
        key = call_key(self.backend, self.model, messages, sampling, schema, identity=self.identity)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.log(key, self.run_id, "hit")
            return Completion(hit.output, hit.latency_s, cached=True)
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(base_url=self.base_url, api_key=self.api_key,
                                  timeout=self.timeout_s, max_retries=1)
        try:
            start = time.perf_counter()
            resp = self._client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=max_tokens, temperature=0.0,
                top_p=1.0, seed=0,
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "verdict", "schema": schema}})
        except Exception as exc:  # a failed call keeps the row; nothing cached, a rerun retries
            detail = f"{type(exc).__name__}: {exc}"[:500]
            self._cache.log(key, self.run_id, "error", detail)
            return Completion(None, error=detail)
        latency = time.perf_counter() - start
        choice = resp.choices[0]
        usage = resp.usage
        self._cache.put(key, self.backend, self.model, {"messages": messages, **sampling},
                        choice.message.content, choice.finish_reason,
                        usage.prompt_tokens if usage else None,
                        usage.completion_tokens if usage else None, latency)
        self._cache.log(key, self.run_id, "miss")
        return Completion(choice.message.content, latency)


# ------------------------------------------------------------------ verdict

@dataclass
class SentenceCheck:
    n: int
    sentence: str
    supported: bool
    span: str
    reason: str
    accepted: bool  # a flag that passed the span checks (counts against the row)
    why_ignored: str = ""


@dataclass
class VerifierVerdict:
    """status: 'supported' | 'unsupported' | 'error' (no usable answer: the row keeps its
    rules verdict). `reasons` are gate-style reasons of the accepted flags."""
    status: str
    checks: list[SentenceCheck] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    error: str | None = None
    latency_s: float | None = None
    cached: bool = False

    @property
    def passed(self) -> bool | None:
        return None if self.status == "error" else self.status == "supported"


def _words(text: str) -> list[str]:
    return [_key(w) for w in _WORD.findall(text)]


@dataclass(frozen=True)
class Evidence:
    """What a flagged span is checked against: the facts' word keys and numbers."""
    known: frozenset[str]
    numbers: frozenset[str]


def evidence_for(item: Item, listener: Listener | None) -> Evidence:
    text = json.dumps(item.facts(), ensure_ascii=False)
    if listener is not None:
        text += json.dumps(listener_context(listener, max_history=len(listener.history)), ensure_ascii=False)
    return Evidence(frozenset(traceable_words(item, listener)), frozenset(re.findall(r"\d+", text)))


def accept_flag(span: str, sentence: str, evidence: Evidence) -> str:
    """'' when a flagged span counts, else why it is ignored: it must be (nearly) words of
    the sentence, not most of it, and hold a word or number the facts lack. Function words,
    number words and words of the facts never count: a small model "flags" the item's own
    album ("Live On Two Legs") as often as a made-up claim (measured on dev2)."""
    span_words = _words(span)
    if not span_words:
        return "empty span"
    n_sentence = len(_words(sentence))
    if len(span_words) > MAX_FLAG_WORDS or len(span_words) > MAX_FLAG_SHARE * n_sentence:
        return "span is most of the sentence, not a claim"
    sentence_words = set(_words(sentence))
    inside = sum(1 for w in span_words if w in sentence_words)
    if inside < max(1, 0.8 * len(span_words)):
        return "span not in the sentence"
    for w in span_words:
        if w.isdigit():
            if w not in evidence.numbers:
                return ""
        elif w not in STOP_WORDS and w not in NUMBER_WORDS and not (_stem_variants(w) & evidence.known):
            return ""
    return "span holds only words of the facts"


def parse_verdict(text: str | None, sentences: list[str], evidence: Evidence) -> VerifierVerdict:
    """The teacher's JSON answer -> a verdict; anything malformed is an 'error' verdict."""
    if not text:
        return VerifierVerdict("error", error="no answer")
    try:
        data = json.loads(text)
        entries = data["sentences"]
        if not isinstance(entries, list):
            raise TypeError("sentences is not a list")
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return VerifierVerdict("error", error=f"unparseable answer ({type(exc).__name__}): {text[:80]!r}")
    checks: list[SentenceCheck] = []
    for n, (entry, sentence) in enumerate(zip(entries, sentences), start=1):
        if not isinstance(entry, dict):
            return VerifierVerdict("error", error=f"sentence {n}: entry is not an object")
        span = str(entry.get("unsupported_span") or "").strip()
        reason = str(entry.get("reason") or "").strip()
        supported = entry.get("supported")
        if not isinstance(supported, bool):
            return VerifierVerdict("error", error=f"sentence {n}: 'supported' is not a boolean")
        flagged = not supported and bool(span)
        why = accept_flag(span, sentence, evidence) if flagged else ""
        checks.append(SentenceCheck(n, sentence, supported, span, reason, flagged and not why, why))
    reasons = [f'{VERIFIER_PREFIX} "{c.span}" not supported by the item or listener facts'
               + (f" ({clean_field_text(c.reason)[:MAX_REASON_CHARS]})" if c.reason else "")
               for c in checks if c.accepted]
    return VerifierVerdict("unsupported" if reasons else "supported", checks, reasons)


def verify_claims(note: str, item: Item, listener: Listener | None, endpoint: VerifierEndpoint,
                  prompt: VerifyPrompt | None = None) -> VerifierVerdict:
    """Ask `endpoint` whether each sentence of `note` is supported by the item facts and the
    listener view. Never raises for a bad answer or a failed call: that is an 'error' verdict."""
    prompt = prompt or _default_prompt()
    sentences = split_sentences(note)
    messages = prompt.messages(sentences, item, listener)
    done = endpoint.complete(messages, verify_schema(len(sentences)), VERIFY_MAX_TOKENS)
    if done.text is None:
        verdict = VerifierVerdict("error", error=done.error or "no answer")
    else:
        verdict = parse_verdict(done.text, sentences, evidence_for(item, listener))
    verdict.latency_s, verdict.cached = done.latency_s, done.cached
    return verdict


_PROMPT: VerifyPrompt | None = None


def _default_prompt() -> VerifyPrompt:
    global _PROMPT
    if _PROMPT is None:
        _PROMPT = VerifyPrompt.load()
    return _PROMPT


def apply_verdict(grounding: GateResult, verdict: VerifierVerdict | None) -> GateResult:
    """The grounding result with the verifier's accepted flags added. Only a pass the
    verifier contradicts changes; an error or a supported verdict leaves it as it is."""
    if verdict is None or verdict.status != "unsupported" or not grounding.passed:
        return grounding
    return GateResult(passed=False, reasons=list(grounding.reasons) + verdict.reasons,
                      score=grounding.score)


def second_opinion(gates: dict[str, GateResult], note: str | None, item: Item, listener: Listener | None,
                   endpoint: VerifierEndpoint, prompt: VerifyPrompt | None = None
                   ) -> tuple[dict[str, GateResult], VerifierVerdict | None]:
    """run_gates' verdicts with the verifier asked about an unsure grounding pass (the
    pipeline hook): (gates, verdict or None when the row was not sent)."""
    grounding = gates.get("grounding")
    if note is None or grounding is None or not grounding.passed:
        return gates, None
    unsure = unsure_reasons(note, item, listener)
    if not unsure:
        return gates, None
    verdict = verify_claims(note, item, listener, endpoint, prompt)
    return {**gates, "grounding": apply_verdict(grounding, verdict)}, verdict
