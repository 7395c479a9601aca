"""Admission and request limits, kept free of HTTP so they can be unit-tested.

    key_matches()      constant-time API key check
    Admission          `slots` running + `queue_size` waiting; beyond that `Overloaded` at once
    read_limited_body  reads at most N bytes (Content-Length checked first), else `BodyTooLarge`
    apply_token_cap    clamps max_tokens / max_completion_tokens, sets a default
"""

from __future__ import annotations

import asyncio
import hmac
import math
from collections import deque
from typing import Any


class Overloaded(Exception):
    """Every slot busy and the wait queue full: answer 429 with Retry-After."""

    def __init__(self, retry_after_s: int):
        super().__init__(f"over capacity; retry after {retry_after_s}s")
        self.retry_after_s = retry_after_s


class BodyTooLarge(Exception):
    pass


def key_matches(presented: str | None, keys: list[str]) -> bool:
    """True if `presented` equals one of `keys`, compared in constant time.

    Every key is compared (no early exit), so timing does not reveal which key
    or how many characters matched.
    """
    if not presented:
        return False
    given = presented.encode()
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(given, key.encode())
    return ok


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class Ticket:
    """One admitted request; `release()` frees its slot (idempotent)."""

    def __init__(self, admission: "Admission"):
        self._admission = admission
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._admission._release()


class Admission:
    """Bounded concurrency with a bounded wait queue; never an unbounded backlog.

    `enter()` returns a `Ticket` once a slot is free. If all slots are taken
    and `queue_size` requests already wait, it raises `Overloaded` without
    waiting. Retry-After is estimated from recent request durations: the time
    for the queue ahead to drain through the slots, at least 1 s.
    """

    def __init__(self, slots: int, queue_size: int):
        self.slots = slots
        self.queue_size = queue_size
        self.active = 0
        self.waiting = 0
        self._sem = asyncio.Semaphore(slots)
        self._recent_s: deque[float] = deque(maxlen=50)

    @property
    def admitted(self) -> int:
        return self.active + self.waiting

    def retry_after_s(self) -> int:
        mean = sum(self._recent_s) / len(self._recent_s) if self._recent_s else 1.0
        return max(1, math.ceil(mean * (self.waiting + 1) / self.slots))

    def record_duration(self, seconds: float) -> None:
        self._recent_s.append(seconds)

    async def enter(self) -> Ticket:
        if self.admitted >= self.slots + self.queue_size:
            raise Overloaded(self.retry_after_s())
        self.waiting += 1
        try:
            await self._sem.acquire()  # cancellable: a timed-out or gone waiter leaves the queue
        finally:
            self.waiting -= 1
        self.active += 1
        return Ticket(self)

    def _release(self) -> None:
        self.active -= 1
        self._sem.release()


async def read_limited_body(receive_chunks, content_length: str | None, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes.

    A declared Content-Length over the limit is refused before reading; a
    chunked body is counted while it streams in, so nothing large is buffered.
    `receive_chunks` is an async iterator of bytes (Starlette's `request.stream()`).
    """
    if content_length is not None:
        try:
            if int(content_length) > limit:
                raise BodyTooLarge(f"body of {content_length} bytes exceeds the {limit}-byte limit")
        except ValueError:
            raise BodyTooLarge("invalid Content-Length") from None
    parts, size = [], 0
    async for chunk in receive_chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body exceeds the {limit}-byte limit")
        parts.append(chunk)
    return b"".join(parts)


def apply_token_cap(body: dict[str, Any], cap: int, default: int) -> tuple[int, bool]:
    """Clamp the request's token limit to `cap` in place; returns (limit, clamped).

    OpenAI clients send `max_tokens` or the newer `max_completion_tokens`; both
    are honoured (the smaller wins) and the engine gets `max_tokens`. Missing:
    `default`. Non-integers or values < 1 raise ValueError (a 400).
    """
    asked = []
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.pop(key, None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer")
        asked.append(value)
    wanted = min(asked) if asked else default
    limit = min(wanted, cap)
    body["max_tokens"] = limit
    return limit, wanted > cap
