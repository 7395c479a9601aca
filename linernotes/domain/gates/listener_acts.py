"""What the note says the listener does or is, read by structure:

* "since you ride motorcycles", "as you cook dinner", "you knit on Sundays": a
  verb after "you" that is not a verb of taste, reading, listening, having or
  thinking claims a habit or an act the listener record cannot hold (it holds a
  country, an age band, a history with ratings and a taste). The allowed verbs are
  a closed class by meaning (data/grounding_listener_cues.txt [you_verb]);
  anything else after a subordinator ("since", "as", "because", "now that",
  "when", "while", "if") or at the start of a sentence is an invented habit.
* "as you near 30", "now that you're turning forty", "your 40th birthday": an
  exact age, which the record never holds (only a band).
* "As a grandmother of four, you ...": who the listener is (a job, family, trait);
  a listener role ("As a rock fan, you") passes.
"""

from __future__ import annotations

import re
from functools import lru_cache

from linernotes.domain.gates.tally import Claims
from linernotes.domain.gates.tokens import quote
from linernotes.domain.gates.vocab import read_sections

_AGE_WORD = (r"(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[\s-]+(?:one|two|three|four|five|six|"
             r"seven|eight|nine))?|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen")
_NEAR_AGE = re.compile(r"\byou(?:['’]re|\s+are|['’]ve|\s+have)?\s+(?:just\s+|now\s+|almost\s+|nearly\s+|about\s+to\s+)?"
                       r"(?:near|nearing|turn|turned|turning|approach|approaching|hit|hitting|push|pushing|reach|"
                       r"reached|reaching|past|over|under|almost|nearly|passed|crossed|crossing)\s+"
                       r"(\d{2}|" + _AGE_WORD + r")\b(?!\s*(?:minutes?|pages?|episodes?|tracks?|books?|songs?|%))",
                       re.IGNORECASE)
_BIRTHDAY = re.compile(r"\byour\s+(?:\d{2}(?:st|nd|rd|th)|(?:twent|thirt|fort|fift|sixt|sevent|eight)(?:y|ieth)"
                       r"(?:[\s-]\w+)?)\s+(?:birthday|year)\b", re.IGNORECASE)

# "since you <verb>": the subordinators after which "you <verb>" states a fact of the listener
_YOU_VERB = re.compile(r"(?:^|[.;:!?]\s*|\b(?:since|as|because|now\s+that|when|whenever|while|if|once|after|"
                       r"before|until|where)\s+)you\s+(?:(?:[a-z]+ly|also|still|just|already|often|always|"
                       r"sometimes|never|ever|now|too|both|all|even|each|regularly)\s+){0,2}([a-z]+(?:['’][a-z]+)?)\b",
                       re.IGNORECASE)


# "As a grandmother of four, you ...", "As a nurse, you ...": who the listener is, which
# the record never says. A listener role ("As a rock fan, you") is no such claim.
_AS_A = re.compile(r"\bas\s+(?:a|an)\s+((?:[a-z-]+\s+){0,3}?[a-z-]+)\s*,\s*(?:you|your)\b", re.IGNORECASE)
_ROLES_OK = frozenset("""reader readers listener listeners fan fans lover lovers devotee admirer follower
enthusiast buff aficionado newcomer regular""".split())


@lru_cache(maxsize=1)
def _allowed_verbs() -> frozenset[str]:
    return frozenset(w.lower() for line in read_sections("grounding_listener_cues.txt").get("you_verb", ())
                     for w in line.split())


def check_listener_acts(text: str, free: str, claims: Claims) -> None:
    """Invented acts ("since you ride motorcycles") and exact ages ("as you near 30")."""
    for rx in (_NEAR_AGE, _BIRTHDAY):
        for m in rx.finditer(free):
            claims.bad(f'exact age "{quote(text, *m.span())}" not supported (the listener record holds an age '
                       "band at most)")
    for m in _AS_A.finditer(free):
        if not set(m.group(1).lower().split()) & _ROLES_OK:
            claims.bad(f'invented listener fact "{quote(text, *m.span())}" (the listener record holds no job, '
                       "family or trait)")
    verbs = _allowed_verbs()
    if not verbs:
        return
    for m in _YOU_VERB.finditer(free):
        verb = m.group(1).lower().replace("’", "'")
        if verb in verbs or verb.split("'")[0] in ("re", "ve", "ll", "d", "s") or "'" in verb:
            continue
        claims.bad(f'invented listener habit or event "{quote(text, m.start(1), m.end(1), 20)}" (the listener '
                   f'record holds no such fact: "you {verb}")')
