"""Numbers other than years: durations ("an eight-minute epic", "5:38"), counts
("300 pages", "12 episodes", "three albums") and bare numbers, checked against
the item's facts (duration from duration_s) and its own texts. Years, decades,
ages and ratings are checked elsewhere (claims.py, listener_claims.py)."""

from __future__ import annotations

import re

from linernotes.domain.gates.claims import _YEAR_UNIT_RE
from linernotes.domain.gates.tokens import quote

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
          "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
          "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
          "ninety": 90, "hundred": 100, "dozen": 12, "half": 0.5}
_NUM = (r"(\d+(?:[.,]\d+)?|(?:" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")"
        r"(?:[\s-](?:one|two|three|four|five|six|seven|eight|nine|hundred|thousand|and[\s-]a[\s-]half))*)")
_DURATION = re.compile(r"(?<![\w.])" + _NUM + r"[\s-]*(?:(minutes?|mins?)|(seconds?|secs?)|(hours?|hrs?))\b",
                       re.IGNORECASE)
_CLOCK = re.compile(r"(?<![\w:.])(\d{1,2}):([0-5]\d)(?![\w:])")
_COUNT = re.compile(r"(?<![\w.])" + _NUM + r"[\s-]+(?:[a-z]+[\s-]+)?"
                    r"(pages?|episodes?|chapters?|seasons?|tracks?|songs?|albums?|records?|books?|novels?|"
                    r"volumes?|installments?|instalments?|parts?|stories|copies|awards?|nominations?|"
                    r"weeks|decades|years|members?|singles?|hits?|editions?|languages?|countries|"
                    r"million|thousand|billion|times|people|fans|listeners|readers|downloads|streams|"
                    r"subscribers|plays|views|followers|guests|interviews|concerts|gigs|dates|cities|"
                    r"minutes?\s+(?:of\s+)?(?:episodes?|shows?)|hours?\s+of\s+episodes?)\b", re.IGNORECASE)
# "250,000 people": a grouped number the bare-number pattern cannot read
_GROUPED = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?![\w,]|\.\d)")
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
             "eighth": 8, "ninth": 9, "tenth": 10}
# "third novel", "the second Eclipse Bay book", "5th album": a place in a series or career
_ORDINAL = re.compile(r"\b(" + "|".join(_ORDINALS) + r"|\d+(?:st|nd|rd|th))\s+(?:[\w\x00'’-]+\s+){0,3}?"
                      r"(books?|novels?|album|record|single|track|song|installment|instalment|entry|volume|"
                      r"episode|season|outing|release|lp|ep|title|story|chapter|part)\b", re.IGNORECASE)
_BARE = re.compile(r"(?<![\w.,:/'’$£€#-])(\d+(?:\.\d+)?)(?![\w%]|[.,:/]\d|\s*(?:/|out of)\s*\d)")


def _value(raw: str) -> float | None:
    raw = raw.lower().replace(",", ".")
    try:
        return float(raw)
    except ValueError:
        pass
    total = 0.0
    for part in re.split(r"[\s-]+", raw):
        if part in ("and", "a"):
            continue
        if part == "half":
            total += 0.5
        elif part == "hundred":
            total = (total or 1) * 100
        elif part == "thousand":
            total = (total or 1) * 1000
        elif part in _WORDS:
            total += _WORDS[part]
        else:
            return None
    return total


def check_numbers(text: str, free: str, allowed, claims) -> set[tuple[int, int]]:
    """Duration and count claims, then bare numbers; returns the spans judged."""
    spans: set[tuple[int, int]] = set()
    dur_min = allowed.duration_s / 60 if allowed.duration_s else None
    for m in _DURATION.finditer(free):
        n = _value(m.group(1))
        if n is None:
            continue
        spans.add(m.span())
        minutes = n if m.group(2) else n / 60 if m.group(3) else n * 60
        bound = _BOUND.search(free[max(0, m.start() - 24):m.start()])
        if dur_min is not None and (_bounded(bound.group(1).lower(), minutes, dur_min) if bound
                                    else _close(minutes, dur_min)):
            claims.ok()
        else:
            have = f"item duration {dur_min:.1f} min" if dur_min is not None else "item has no duration"
            claims.bad(f'duration "{quote(text, *m.span())}" not supported ({have})')
    for m in _CLOCK.finditer(free):
        spans.add(m.span())
        secs = int(m.group(1)) * 60 + int(m.group(2))
        if allowed.duration_s and abs(secs - allowed.duration_s) <= 1.5:
            claims.ok()
        else:
            claims.bad(f'duration "{m.group(0)}" not supported')
    for m in _COUNT.finditer(free):
        if any(s < m.end() and m.start() < e for s, e in spans):
            continue
        n = _value(m.group(1))
        if n is None:
            continue
        unit = m.group(2).lower()
        if re.fullmatch(r"\d{4}", m.group(1)) and 1100 <= n <= 2099 and not _YEAR_UNIT_RE.match(free, m.end(1)):
            continue  # "a 1994 book": a year (claims.check_years), not a count
        if unit in ("years",) and re.match(r"[\s-]*old", free[m.end():]):
            continue  # an age: listener_claims.py
        if n == 1 and unit in ("times",):
            continue
        spans.add(m.span())
        if m.group(1).lower() in ("one",) and not re.match(r"\d", m.group(1)) and unit not in (
                "pages", "episodes", "copies", "awards"):
            continue  # "one song", "one book": not a count claim
        if _num_in_item(n, allowed):
            claims.ok()
        else:
            claims.bad(f'count "{quote(text, *m.span())}" not in the item\'s facts')
    for m in _ORDINAL.finditer(free):
        if re.search(r"\byour\s+$", free[max(0, m.start() - 8):m.start()], re.IGNORECASE):
            continue  # "your third Ben Elton book": the listener's history
        spans.add(m.span())
        raw = m.group(1).lower()
        n = _ORDINALS.get(raw) or int(re.match(r"\d+", raw).group())
        if _num_in_item(n, allowed) or raw in allowed.item_words:
            claims.ok()
        else:
            claims.bad(f'ordinal "{quote(text, *m.span())}" not in the item\'s facts')
    for m in _GROUPED.finditer(free):
        if any(s < m.end() and m.start() < e for s, e in spans):
            continue
        spans.add(m.span())
        if _num_in_item(float(m.group(0).replace(",", "")), allowed):
            claims.ok()
        else:
            claims.bad(f'number "{quote(text, *m.span())}" not in the item or listener facts')
    for m in _BARE.finditer(free):
        if any(s <= m.start() < e for s, e in spans):
            continue
        if re.search(r"(?:/|out\s+of)\s*$", free[:m.start()], re.IGNORECASE):
            continue  # the scale of a rating, "9 out of 10": listener_claims.py
        raw = m.group(1)
        if len(raw) == 4 and raw.isdigit() and 1100 <= int(raw) <= 2099:
            continue  # a year: claims.check_years
        if re.match(r"\s*(?:s\b|['’]s\b|[\s-]*(?:years?|yrs?)[\s-]*old|[\s-]*stars?\b)", free[m.end():]) \
                or re.search(r"(?:aged?|ages|age)\s*$", free[:m.start()], re.IGNORECASE):
            continue  # decades, ages, stars: judged elsewhere
        if re.match(r"\s*(?:-|–|to)\s*\d{2}\b|\s*\+", free[m.end():]) or re.search(r"\d\s*(?:-|–|to)\s*$", free[:m.start()]):
            continue  # an age band "25-34": listener_claims.py
        n = float(raw)
        if _num_in_item(n, allowed) or (allowed.age_band and raw in allowed.age_band) \
                or any(abs(n - r) < 0.01 for _, r in allowed.ratings):
            claims.ok()
        else:
            claims.bad(f'number "{quote(text, *m.span())}" not in the item or listener facts')
    return spans


# "under five minutes", "over eight minutes", "nearly six minutes": a bound, not a value
_BOUND = re.compile(r"\b(under|less than|shy of|short of|below|over|more than|longer than|above|past|"
                    r"nearly|almost|close to)\s+(?:a|an|just|about)?\s*$", re.IGNORECASE)


def _bounded(word: str, minutes: float, actual: float) -> bool:
    if word in ("under", "less than", "shy of", "short of", "below"):
        return actual < minutes
    if word in ("over", "more than", "longer than", "above", "past"):
        return actual > minutes
    return minutes - 1 <= actual < minutes  # nearly / almost / close to


def _close(minutes: float, actual: float) -> bool:
    # within 0.6 min, or the same whole minute ("a three-minute song" for 3.8 min); not
    # the next minute up ("a four-minute song" for 3.2 min)
    return abs(minutes - actual) <= 0.6 or int(minutes) == int(actual)


def _num_in_item(n: float, allowed) -> bool:
    as_int = str(int(n)) if n == int(n) else str(n)
    if as_int in allowed.item_words:
        return True
    words = {v: k for k, v in _WORDS.items()}
    return n in words and words[n] in allowed.item_words
