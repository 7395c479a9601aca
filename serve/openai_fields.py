"""What a client may ask of the engine: an allow-list of OpenAI request fields.

The engine (llama.cpp's server, vLLM) reads many fields of its own from the same
JSON body: `n_predict` beats `max_tokens` (the token cap would be bypassed),
`ignore_eos`, `id_slot`, `samplers`, `cache_prompt`, grammars, a `prompt` array
(one generation per element)... So the endpoint never forwards the client's body:
it builds a new one from the fields below, each type- and range-checked.

Rule for any other field:
  * `user`, `metadata`, `store`: OpenAI bookkeeping the engine does not need; dropped,
    and named in the response header `x-linernotes-dropped-fields`;
  * anything else (engine extensions, tools, logit_bias, ...): 400 naming the fields.

    chat:        model, messages, max_tokens / max_completion_tokens (capped), temperature,
                 top_p, stop, seed, n (1), stream, stream_options, response_format,
                 presence_penalty, frequency_penalty, logprobs, top_logprobs
    completions: model, prompt (one string; arrays are refused), max_tokens (capped),
                 temperature, top_p, stop, seed, n (1), stream, stream_options,
                 presence_penalty, frequency_penalty, logprobs (0-5)
"""

from __future__ import annotations

from typing import Any

from serve.limits import apply_token_cap

DROPPED_HEADER = "x-linernotes-dropped-fields"
DROPPED = frozenset({"user", "metadata", "store"})
COMMON = ("model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed",
          "n", "stream", "stream_options", "presence_penalty", "frequency_penalty", "logprobs")
CHAT_FIELDS = frozenset(COMMON + ("messages", "response_format", "top_logprobs"))
COMPLETION_FIELDS = frozenset(COMMON + ("prompt",))
ROLES = ("system", "user", "assistant")
MAX_STOP = 4  # as OpenAI
MAX_STOP_CHARS = 200
RESPONSE_FORMATS = ("text", "json_object", "json_schema")


class FieldError(ValueError):
    """A request field the endpoint refuses (answered 400 with this message)."""


def names(fields: list[str], shown: int = 10) -> str:
    """'a, b, c' (each cut to 60 characters; at most `shown`, then how many more)."""
    out = ", ".join(str(f)[:60] for f in fields[:shown])
    return out + (f" and {len(fields) - shown} more" if len(fields) > shown else "")


def _number(body: dict[str, Any], key: str, lo: float, hi: float) -> None:
    value = body.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise FieldError(f"{key} must be a number between {lo:g} and {hi:g}")


def _integer(body: dict[str, Any], key: str, lo: int | None = None, hi: int | None = None) -> None:
    value = body.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or (lo is not None and value < lo) or (
            hi is not None and value > hi):
        span = f" between {lo} and {hi}" if lo is not None and hi is not None else ""
        raise FieldError(f"{key} must be an integer{span}")


def _stop(value: Any) -> None:
    if value is None:
        return
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops) or len(stops) > MAX_STOP:
        raise FieldError(f"stop must be a string or a list of at most {MAX_STOP} strings")
    if any(len(s) > MAX_STOP_CHARS for s in stops):
        raise FieldError(f"stop strings must be at most {MAX_STOP_CHARS} characters")


def _messages(value: Any) -> list[dict[str, Any]]:
    """Role + text content only (and the optional name); other message keys are refused."""
    if not isinstance(value, list) or not value:
        raise FieldError("messages must be a non-empty list")
    out = []
    for i, msg in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise FieldError(f"{where} must be an object")
        extra = sorted(set(msg) - {"role", "content", "name"})
        if extra:
            raise FieldError(f"{where}: unsupported field(s) {', '.join(extra)}")
        if msg.get("role") not in ROLES:
            raise FieldError(f"{where}.role must be one of {', '.join(ROLES)}")
        content = msg.get("content")
        if isinstance(content, list):  # content parts: text only (the model reads no images)
            for j, part in enumerate(content):
                if not (isinstance(part, dict) and part.get("type") == "text"
                        and isinstance(part.get("text"), str) and set(part) <= {"type", "text"}):
                    raise FieldError(f"{where}.content[{j}] must be {{'type': 'text', 'text': str}}")
        elif not isinstance(content, str):
            raise FieldError(f"{where}.content must be a string or a list of text parts")
        clean = {"role": msg["role"], "content": content}
        if msg.get("name") is not None:
            if not isinstance(msg["name"], str) or len(msg["name"]) > 64:
                raise FieldError(f"{where}.name must be a string of at most 64 characters")
            clean["name"] = msg["name"]
        out.append(clean)
    return out


def _response_format(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or value.get("type") not in RESPONSE_FORMATS:
        raise FieldError(f"response_format.type must be one of {', '.join(RESPONSE_FORMATS)}")
    if value["type"] == "json_schema" and not isinstance(value.get("json_schema"), dict):
        raise FieldError("response_format.json_schema must be an object")


def _stream_options(value: Any) -> dict[str, bool] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"include_usage"} or not isinstance(
            value.get("include_usage", False), bool):
        raise FieldError("stream_options may only hold include_usage (true/false)")
    return dict(value)


def engine_body(body: dict[str, Any], route: str, *, cap: int, default_max_tokens: int,
                max_n: int = 1) -> tuple[dict[str, Any], int, list[str]]:
    """(body for the engine, token limit used, dropped field names) for `route` "chat" or
    "completions"; FieldError for a field outside the allow-list or a bad value."""
    allowed = CHAT_FIELDS if route == "chat" else COMPLETION_FIELDS
    dropped = sorted(set(body) & DROPPED)
    unknown = sorted(set(body) - allowed - DROPPED)
    if unknown:
        raise FieldError(f"unsupported field(s) {names(unknown)}: this endpoint accepts "
                         f"{', '.join(sorted(allowed))} (see serve/openai_fields.py)")
    out = {k: body[k] for k in allowed if body.get(k) is not None}
    n = out.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= max_n:
        raise FieldError(f"n must be between 1 and {max_n}")
    try:
        limit, _ = apply_token_cap(out, cap, default_max_tokens)  # leaves only max_tokens
    except ValueError as exc:
        raise FieldError(str(exc)) from None
    _number(out, "temperature", 0, 2)
    _number(out, "top_p", 0, 1)
    _number(out, "presence_penalty", -2, 2)
    _number(out, "frequency_penalty", -2, 2)
    _integer(out, "seed")
    _stop(out.get("stop"))
    if "stream" in out and not isinstance(out["stream"], bool):
        raise FieldError("stream must be true or false")
    if "stream_options" in out:
        out["stream_options"] = _stream_options(out["stream_options"])
    if route == "chat":
        if "messages" not in out:
            raise FieldError("messages is required")
        out["messages"] = _messages(out["messages"])
        _response_format(out.get("response_format"))
        if "logprobs" in out and not isinstance(out["logprobs"], bool):
            raise FieldError("logprobs must be true or false")
        _integer(out, "top_logprobs", 0, 20)
    else:
        prompt = out.get("prompt")
        if not isinstance(prompt, str):
            raise FieldError("prompt must be a single string (arrays of prompts or token ids "
                             "would start several generations per request; send one per request)")
        _integer(out, "logprobs", 0, 5)
    return out, limit, dropped
