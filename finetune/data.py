"""SFT rows -> a tokenized `datasets.Dataset` that TRL's SFTTrainer trains on as is.

A row has a `messages` column: a list of {role, content}; the final turn is
the assistant answer to learn (published rows are [system, user, assistant],
see curation/publish.py). The text is rendered with the model's own chat
template (the ChatML template of the packaged SmolLM2), i.e. exactly what
`tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True)`
gives at inference, followed by the answer and its `<|im_end|>`.

Assistant-only loss is done here, not by TRL: SmolLM2's template has no
`{% generation %}` markers, so TRL's `assistant_only_loss=True` would have to
swap in a patched template, and it would put every assistant turn (few-shot
answers too) in the loss. Instead the labels are built directly: -100 on the
prompt (everything up to and including `<|im_start|>assistant\\n`), token ids
on the final answer and its end-of-turn. The dataset then carries `input_ids`
and `labels`; TRL sees `input_ids` and skips its own tokenization, and keeps a
`labels` column as it is.

Examples longer than `max_length` are dropped, not truncated: cutting the
prompt would train on a context the model never sees at inference, cutting
the answer would teach it to stop early. The count is reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from linernotes.chat_tokens import IGNORE_INDEX, chat_messages as _messages, tokenize_example  # noqa: F401 - re-exported


@dataclass
class SFTData:
    dataset: Any  # datasets.Dataset with input_ids, labels
    n_rows: int
    dropped_too_long: int
    dropped_invalid: int
    problems: list[str] = field(default_factory=list)  # first few reasons, for the manifest

    @property
    def n_examples(self) -> int:
        return len(self.dataset)


def build_sft_dataset(rows: Iterable[Mapping[str, Any]], tokenizer, max_length: int,
                      assistant_only_loss: bool = True) -> SFTData:
    import datasets

    records, problems = [], []
    n = too_long = invalid = 0
    for i, row in enumerate(rows):
        n += 1
        try:
            ex = tokenize_example(_messages(row), tokenizer, assistant_only_loss)
        except ValueError as exc:
            invalid += 1
            if len(problems) < 10:
                problems.append(f"row {i}: {exc}")
            continue
        if len(ex["input_ids"]) > max_length:
            too_long += 1
            if len(problems) < 10:
                problems.append(f"row {i}: {len(ex['input_ids'])} tokens > max_length {max_length}")
            continue
        records.append(ex)
    if n and not records:
        raise ValueError(f"no usable SFT example among {n} rows ({too_long} longer than max_length="
                         f"{max_length}, {invalid} invalid); first problems: {problems[:3]}")
    features = datasets.Features({"input_ids": datasets.Sequence(datasets.Value("int32")),
                                  "labels": datasets.Sequence(datasets.Value("int32"))})
    ds = datasets.Dataset.from_list(records, features=features) if records else \
        datasets.Dataset.from_dict({"input_ids": [], "labels": []}, features=features)
    return SFTData(ds, n, too_long, invalid, problems)


def rows_fingerprint(rows: Sequence[Mapping[str, Any]]) -> str:
    """Hash of the training conversations (order matters: it is the data order's seed input)."""
    from linernotes.fingerprint import items_fingerprint

    return items_fingerprint((_messages(row) for row in rows), sep=b"\n")


def load_rows(path: str | Path) -> list[dict[str, Any]]:
    """SFT rows from a .jsonl / .json / .parquet file, or a folder holding parquet
    (a published dataset folder: data/sft/*.parquet is preferred)."""
    path = Path(path)
    if path.is_dir():
        for pattern in ("data/sft/*.parquet", "data/*.parquet", "*.parquet", "*.jsonl"):
            files = sorted(path.glob(pattern))
            if files:
                return [r for f in files for r in load_rows(f)]
        raise FileNotFoundError(f"no parquet/jsonl SFT rows under {path}")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        return data if isinstance(data, list) else data["rows"]
    if path.suffix == ".parquet":
        from linernotes import rows

        return rows.read_parquet(path, "sft").to_pylist()  # checked against the SFT example schema
    raise ValueError(f"unsupported SFT data file {path} (expected .jsonl, .json, .parquet or a folder)")


def golden_example_rows(golden_path: str | Path | None = None,
                        template_path: str | Path | None = None) -> list[dict[str, Any]]:
    """The editors' golden few-shot examples (linernotes/domain/data/golden_examples.yaml) as SFT rows:
    [system, user, assistant] in the zero-shot format the student trains on."""
    from linernotes.domain.prompts import PromptBuilder

    builder = PromptBuilder.default(template_path, golden_path, few_shot=0)
    return [{"item_id": None, "item_type": ex.item_type, "source": "editor_golden", "task": "explain",
             "messages": [{"role": "system", "content": builder.system_message(ex.item_type)},
                          {"role": "user", "content": builder.user_message(ex.item, ex.listener)},
                          {"role": "assistant", "content": json.dumps(ex.answer, ensure_ascii=False)}]}
            for ex in builder.golden]
