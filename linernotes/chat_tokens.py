"""One chat conversation -> token ids and loss labels, the one rule every trainer uses.

`tokenize_example` checks that the generation prompt is a prefix of the full
conversation (else the inference context would differ from the training one) and
masks the prompt out of the loss. Shared by finetune (SFT of the explain task) and
recommend (the code-token tasks), so it lives in the core.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

IGNORE_INDEX = -100


def chat_messages(row: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    msgs = row.get("messages") if isinstance(row, Mapping) else row
    if isinstance(msgs, str):  # rows read from a flat file may hold the list as JSON text
        from linernotes.jsoncol import loads_json

        msgs = loads_json(msgs, None)
        if msgs is None:
            raise ValueError("'messages' is text but not a JSON list of messages")
    if not isinstance(msgs, (list, tuple)) or not msgs:
        raise ValueError("row has no 'messages' list")
    out = []
    for m in msgs:
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise ValueError(f"message without role/content: {m!r}")
        out.append({"role": str(m["role"]), "content": str(m["content"])})
    if out[-1]["role"] != "assistant":
        raise ValueError(f"final turn is {out[-1]['role']!r}, expected 'assistant'")
    if len(out) < 2:
        raise ValueError("no prompt turns before the assistant answer")
    return out


def chat_ids(tokenizer, messages, add_generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt,
                                        return_dict=True)
    ids = out["input_ids"]
    return list(ids[0] if ids and isinstance(ids[0], list) else ids)


def tokenize_example(messages: Sequence[Mapping[str, str]], tokenizer,
                     assistant_only_loss: bool = True) -> dict[str, list[int]]:
    """input_ids + labels for one conversation (no length limit applied here)."""
    messages = chat_messages(list(messages))
    prompt_ids = chat_ids(tokenizer, messages[:-1], add_generation_prompt=True)
    full_ids = chat_ids(tokenizer, messages, add_generation_prompt=False)
    if full_ids[: len(prompt_ids)] != prompt_ids:
        # The template renders the prompt differently once the answer follows;
        # the inference context would then differ from the training one.
        raise ValueError("chat template: the generation prompt is not a prefix of the full conversation")
    if len(full_ids) == len(prompt_ids):
        raise ValueError("empty assistant answer")
    if assistant_only_loss:
        labels = [IGNORE_INDEX] * len(prompt_ids) + full_ids[len(prompt_ids):]
    else:
        labels = list(full_ids)
    return {"input_ids": full_ids, "labels": labels}
