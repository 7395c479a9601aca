"""The rows that flow between stages, declared once.

Each row kind is a pydantic model; its pyarrow schema (and `datasets.Features`)
is derived from the model, so the parquet a stage writes and the columns the
next stage reads are one declaration:

    kind            written by                         file
    generated       synth (ExplanationRecord.to_row)   runs/synth-*/data/train-*.parquet
    curated         curation stage (+ dup/cluster/map) runs/curate-*/data/train-*.parquet
    review_sample   curation review sample             runs/curate-*/sample/review-*.parquet
    response        label pull (one per record x user) runs/label-*/responses.parquet
    review          label resolve (one per record)     runs/label-*/resolved.parquet
    golden          label resolve                      runs/label-*/golden.parquet
    label_pair      label resolve                      runs/label-*/pairs.parquet
    sft             publish / fine-tuning input        publish-*/data/sft/train-*.parquet
    preference      publish / DPO input                publish-*/data/preferences/train-*.parquet

Rules: a field without a default is required (a file without that column is an
error naming file and column); a field with a default may be missing in older
files and is filled with the default on read; columns that are not declared
pass through untouched (stages may add columns for display). Nested values
whose shape varies (item, listener, gates, metadata) stay JSON strings, see
`linernotes.jsoncol`.

`task` ("explain" today; "commentary" and "recommend" later) travels from the
generated row through curation to the SFT example and the preference pair, so
a new task needs no new plumbing: the stages copy the column.
"""

from __future__ import annotations

import os
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_TASK = "explain"
TASKS = ("explain", "commentary", "recommend")


class SchemaError(ValueError):
    """A file or table does not match its declared row kind."""


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str
    content: str


class _Row(BaseModel):
    # Stages add display columns; they pass through, the declared ones are checked.
    model_config = ConfigDict(extra="allow")


class GeneratedRow(_Row):
    """What synth writes (`ExplanationRecord.to_row`); nested values as JSON strings."""

    record_id: str
    task: str = DEFAULT_TASK
    item_id: str
    item_type: str
    listener_id: str
    item: str  # JSON of linernotes.records.Item
    listener: str  # JSON of linernotes.records.Listener
    prompt_version: str
    messages: str  # JSON list of {role, content}: the prompt the teacher saw
    backend: str
    model: str
    sampling: str = "{}"
    raw_output: str | None = None
    parsed: bool = False
    parse_error: str | None = None
    explanation: str | None = None
    facts_used: list[str] = Field(default_factory=list)
    gate_grounding: bool = False
    gate_style: bool = False
    gate_safety: bool = False
    gate_usefulness: bool | None = None  # None: gated before the usefulness gate existed
    gate_reasons: str = "{}"
    gates: str = "{}"
    passed_all: bool = False
    metadata: str = "{}"


class CuratedRow(GeneratedRow):
    """A generated row after curation: dedupe verdict, cluster, 2-D map position."""

    item_title: str | None = None
    dup_stage: str | None = None  # exact | near | semantic | None (kept as representative)
    dup_group: int
    dup_of: str | None = None  # record_id of the representative this row duplicates
    kept: bool
    cluster: int
    cluster_label: str | None = None
    cluster_margin: float | None = None
    cluster_runner_up: int | None = None
    x: float | None = None
    y: float | None = None


class ReviewSampleRow(_Row):
    """A row of the curated review sample (what labeling pushes to Argilla)."""

    review_priority: int
    sample_reason: str
    reason_detail: str | None = None
    all_reasons: str | None = None
    record_id: str
    task: str = DEFAULT_TASK
    item_id: str | None = None
    item_type: str | None = None
    item_title: str | None = None
    item: str | None = None
    listener_id: str | None = None
    listener: str | None = None
    explanation: str | None = None
    facts_used: list[str] | None = None
    parsed: bool | None = None
    parse_error: str | None = None
    gate_grounding: bool | None = None
    gate_style: bool | None = None
    gate_safety: bool | None = None
    gate_usefulness: bool | None = None
    passed_all: bool | None = None
    gate_reasons: str | None = None
    gates: str | None = None
    cluster: int | None = None
    cluster_label: str | None = None
    cluster_margin: float | None = None
    x: float | None = None
    y: float | None = None
    prompt_version: str | None = None
    model: str | None = None
    dup_group: int | None = None


class ResponseRow(_Row):
    """One reviewer's answer to one record (`curation.labeling.pull`)."""

    record_id: str | None = None  # pairs-dataset rows: candidate A's record
    item_id: str | None = None
    listener_id: str | None = None
    user_id: str | None = None
    username: str | None = None
    role: str | None = None
    status: str | None = None
    rating: int | None = None
    grounded: str | None = None
    tone_ok: str | None = None
    corrected_explanation: str | None = None
    preference: list[str] | None = None
    pref_winner: str | None = None
    explanation: str | None = None
    other_explanation: str | None = None
    other_record_id: str | None = None
    teacher: str | None = None
    dataset: str | None = None  # review | pairs
    argilla_record: str | None = None
    answered_by: str | None = None  # human | scripted (curation.label_stage.mark_provenance)


class ReviewRecord(_Row):
    """The resolved review of one record (`curation.labeling.resolve`'s `resolved`)."""

    record_id: str
    item_id: str | None = None
    listener_id: str | None = None
    explanation: str | None = None
    other_record_id: str | None = None
    teacher: str | None = None
    n_submitted: int = 0
    rating: int | None = None
    grounded: str | None = None
    tone_ok: str | None = None
    pref_winner: str | None = None
    corrected_explanation: str | None = None
    golden: str | None = None
    golden_source: str | None = None
    label_source: str | None = None  # human | scripted | mixed


class GoldenRow(_Row):
    record_id: str
    item_id: str | None = None
    listener_id: str | None = None
    teacher: str | None = None
    explanation: str
    original: str | None = None
    source: str | None = None  # corrected | approved
    rating: int | None = None
    label_source: str | None = None


class LabelPair(_Row):
    item_id: str | None = None
    listener_id: str | None = None
    chosen: str | None = None  # a pair missing a side is skipped at publish, not lost here
    rejected: str | None = None
    chosen_record_id: str | None = None
    rejected_record_id: str | None = None
    source: str | None = None  # correction | ranking
    votes_for: int | None = None
    votes_against: int | None = None
    label_source: str | None = None


class SFTExample(_Row):
    """[system, user, assistant] chat rows the student trains on (`curation.publish` sft)."""

    record_id: str | None = None
    task: str = DEFAULT_TASK
    item_id: str | None = None
    item_type: str | None = None
    listener_id: str | None = None
    prompt_version: str | None = None
    messages: list[Message]
    source: str | None = None  # golden | gated_synthetic | editor_golden
    golden_source: str | None = None


class PreferencePair(_Row):
    """TRL conversational preference rows (`curation.publish` preferences)."""

    task: str = DEFAULT_TASK
    item_id: str | None = None
    item_type: str | None = None
    listener_id: str | None = None
    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    chosen_record_id: str | None = None
    rejected_record_id: str | None = None
    source: str | None = None


MODELS: dict[str, type[BaseModel]] = {
    "generated": GeneratedRow, "curated": CuratedRow, "review_sample": ReviewSampleRow,
    "response": ResponseRow, "review": ReviewRecord, "golden": GoldenRow, "label_pair": LabelPair,
    "sft": SFTExample, "preference": PreferencePair,
}
# The row kind of a run's main shard (data/train-*.parquet), by stage.
KIND_OF_STAGE = {"synth": "generated", "curate": "curated"}


def model(kind: str) -> type[BaseModel]:
    try:
        return MODELS[kind]
    except KeyError:
        raise ValueError(f"unknown row kind {kind!r}; known: {sorted(MODELS)}") from None


# ---------------------------------------------------------------- schema from the model

def _arrow_type(tp: Any):
    import pyarrow as pa

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported union {tp!r}")
        return _arrow_type(inner[0])
    if origin is list:
        return pa.list_(_arrow_type(args[0]))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return pa.struct([(n, _arrow_type(f.annotation)) for n, f in tp.model_fields.items()])
    simple = {str: pa.string(), bool: pa.bool_(), int: pa.int64(), float: pa.float64()}
    if tp in simple:
        return simple[tp]
    raise TypeError(f"no arrow type for {tp!r}")


def arrow_schema(kind: str):
    """The declared pyarrow schema of a row kind (declared columns only, in model order)."""
    import pyarrow as pa

    m = model(kind)
    return pa.schema([(n, _arrow_type(f.annotation)) for n, f in m.model_fields.items()])


def features(kind: str):
    """`datasets.Features` of a row kind (for `datasets.Dataset.from_list(..., features=...)`)."""
    import datasets

    return datasets.Features.from_arrow_schema(arrow_schema(kind))


def required_columns(kind: str) -> list[str]:
    return [n for n, f in model(kind).model_fields.items() if f.is_required()]


def _default(kind: str, name: str) -> Any:
    f = model(kind).model_fields[name]
    return f.default_factory() if f.default_factory is not None else f.default  # type: ignore[call-arg]


def _compatible(actual, declared) -> bool:
    """Whether a column of type `actual` can be read as `declared` without changing its meaning."""
    import pyarrow as pa
    t = pa.types
    if actual == declared or t.is_null(actual):
        return True
    if t.is_integer(declared):
        return t.is_integer(actual)
    if t.is_floating(declared):
        return t.is_integer(actual) or t.is_floating(actual)
    if t.is_string(declared) or t.is_large_string(declared):
        return t.is_string(actual) or t.is_large_string(actual)
    if t.is_boolean(declared):
        return t.is_boolean(actual)
    if t.is_list(declared) or t.is_large_list(declared):
        return (t.is_list(actual) or t.is_large_list(actual)) and \
            _compatible(actual.value_type, declared.value_type)
    if t.is_struct(declared):
        if not t.is_struct(actual):
            return False
        have = {actual.field(i).name: actual.field(i).type for i in range(actual.num_fields)}
        return all(declared.field(i).name in have and
                   _compatible(have[declared.field(i).name], declared.field(i).type)
                   for i in range(declared.num_fields))
    return False


def _cast(column, declared):
    import pyarrow as pa

    if pa.types.is_struct(declared) and column.type != declared and pa.types.is_struct(column.type):
        # cast by field name (inferred structs order fields alphabetically)
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        parts = [column.field(declared.field(i).name) for i in range(declared.num_fields)]
        parts = [_cast(p, declared.field(i).type) for i, p in enumerate(parts)]
        return pa.StructArray.from_arrays(parts, fields=list(declared), mask=column.is_null())
    if (pa.types.is_list(declared) and pa.types.is_list(column.type) and column.type != declared
            and pa.types.is_struct(declared.value_type)):
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        values = _cast(column.flatten(), declared.value_type)
        return pa.ListArray.from_arrays(column.offsets, values, type=declared, mask=column.is_null())
    return column.cast(declared)


def _where(where: str | os.PathLike | None) -> str:
    return f"{where}: " if where else ""


# ---------------------------------------------------------------- write / read

def to_table(rows, kind: str, where: str | os.PathLike | None = None):
    """Rows (list of dicts or a DataFrame) -> a pyarrow table with the declared columns typed
    as declared (first), then any other columns. A value that does not fit its column is a
    SchemaError naming the file, the row and the column."""
    import pyarrow as pa

    schema = arrow_schema(kind)
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # pandas
        columns = list(rows.columns)
        data = {c: rows[c].tolist() for c in columns}
        n = len(rows)
    else:
        rows = [dict(r) for r in rows]
        columns = list(dict.fromkeys(k for r in rows for k in r))
        data = {c: [r.get(c) for r in rows] for c in columns}
        n = len(rows)
    missing = [c for c in required_columns(kind) if c not in data]
    if missing and n:
        raise SchemaError(f"{_where(where)}{kind} rows lack required column(s) {missing}")
    arrays, fields = [], []
    for f in schema:
        values = data.get(f.name)
        if values is None:
            values = [_default(kind, f.name)] * n
        arrays.append(_column(values, f, kind, where))
        fields.append(f)
    for c in columns:
        if c in schema.names:
            continue
        try:
            arr = pa.array(data[c], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise SchemaError(f"{_where(where)}column {c!r}: cannot be stored ({exc})") from None
        arrays.append(arr)
        fields.append(pa.field(c, arr.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _column(values: list, f, kind: str, where):
    import pyarrow as pa

    info = model(kind).model_fields[f.name]
    required = info.is_required()
    default = None if required else _default(kind, f.name)
    if default is not None:  # an empty cell of a defaulted field (task, parsed, ...) gets the default
        values = [default if v is None or (isinstance(v, float) and v != v) else v for v in values]
    try:
        arr = pa.array(values, type=f.type, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        arr = None
    if arr is None:  # find the first value that does not fit, for the message
        for i, v in enumerate(values):
            try:
                pa.array([v], type=f.type, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                raise SchemaError(f"{_where(where)}row {i}, column {f.name!r}: {v!r:.80} is not "
                                  f"{f.type} ({kind} rows; {exc})") from None
        raise SchemaError(f"{_where(where)}column {f.name!r}: values are not {f.type} ({kind} rows)")
    if required and arr.null_count and not (pa.types.is_list(f.type) or pa.types.is_struct(f.type)):
        i = next(j for j, v in enumerate(arr.is_null().to_pylist()) if v)
        raise SchemaError(f"{_where(where)}row {i}, column {f.name!r}: missing (required in {kind} rows)")
    return arr


def conform(table, kind: str, where: str | os.PathLike | None = None):
    """A table read from disk -> the declared types: missing required column or an incompatible
    type is a SchemaError naming the file and column; missing optional columns get defaults."""
    import pyarrow as pa

    schema = arrow_schema(kind)
    have = set(table.column_names)
    required = required_columns(kind)
    missing = [c for c in required if c not in have]
    if missing:
        raise SchemaError(f"{_where(where)}no column(s) {missing} (required in {kind} rows; "
                          f"columns present: {table.column_names})")
    arrays, fields = [], []
    for f in schema:
        if f.name not in have:
            arrays.append(pa.array([_default(kind, f.name)] * table.num_rows, type=f.type))
        else:
            col = table.column(f.name)
            if not _compatible(col.type, f.type):
                raise SchemaError(f"{_where(where)}column {f.name!r} is {col.type}, expected {f.type} "
                                  f"({kind} rows)")
            col = _cast(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col, f.type)
            default = None if f.name in required else _default(kind, f.name)
            if col.null_count and default is not None and not pa.types.is_nested(f.type):
                col = col.fill_null(pa.scalar(default, type=f.type))
            arrays.append(col)
        fields.append(f)
    for name in table.column_names:
        if name not in schema.names:
            arrays.append(table.column(name))
            fields.append(table.schema.field(name))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def write_parquet(rows, path: str | Path, kind: str) -> Path:
    """Write rows as one parquet file with the kind's schema (atomic: temp file, then rename)."""
    import pyarrow.parquet as pq

    path = Path(path)
    table = to_table(rows, kind, where=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def read_parquet(path: str | Path, kind: str):
    """A parquet file (or a folder of them) read through the kind's schema -> pyarrow table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file ({kind} rows)")
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    tables = [conform(pq.read_table(f), kind, where=f) for f in files]
    if not tables:
        raise FileNotFoundError(f"{path}: no parquet file ({kind} rows)")
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")


def records(table_or_rows: Any, kind: str, where: str | os.PathLike | None = None) -> list[BaseModel]:
    """Rows as the kind's pydantic models (errors name the row and field)."""
    from pydantic import ValidationError

    rows = table_or_rows.to_pylist() if hasattr(table_or_rows, "to_pylist") else list(table_or_rows)
    m = model(kind)
    out = []
    for i, r in enumerate(rows):
        try:
            out.append(m.model_validate(r))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err.get("loc", ()))
            raise SchemaError(f"{_where(where)}row {i}, field {field!r}: {err.get('msg')} "
                              f"({kind} rows)") from None
    return out


def tasks_of(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The tasks present in rows (missing task: the default), sorted."""
    return sorted({str(r.get("task") or DEFAULT_TASK) for r in rows})
