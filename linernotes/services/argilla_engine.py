"""Argilla search engine for osmem-server (in-memory OpenSearch API, no plugins).

argilla-server 2.8's OpenSearch engine
(`argilla_server.search_engine.commons.BaseElasticAndOpenSearchEngine`) keeps
each record's responses as a list in the search document and edits it with
Painless scripts (`update_record_response`, `delete_record_response`) and
removes a suggestion with another script (`delete_record_suggestion`).
osmem answers "update with script is not supported" (400), which the server
turns into a 500 *after* its SQL write: the annotator's submit fails.

`OsmemEngine` replaces those three methods with read-then-write updates:
GET the document, edit `_source` in Python, write it back with optimistic
concurrency (`if_seq_no`/`if_primary_term`; osmem honours them) and retry on
a 409, so two annotators submitting the same record at once cannot lose each
other's response. Everything else is the stock OpenSearch engine.

Unavailable on this local engine: kNN / vector similarity search. osmem
accepts `knn_vector` mappings and stores vectors (so datasets with vector
settings work and records keep their vectors), but rejects the `knn` query;
"find similar" in the UI and `similarity_search` raise an error here. Use a
real OpenSearch/Elasticsearch (or a hosted Argilla) for that.

The launcher (`linernotes.services.argilla_launch`) imports this module in
the server and worker processes; `install_engine()` registers the class
under the name "opensearch" (`ARGILLA_SEARCH_ENGINE=opensearch`), replacing
the stock one. It runs inside the Argilla venv only (imports argilla_server).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional
from uuid import UUID

from argilla_server.constants import SEARCH_ENGINE_OPENSEARCH
from argilla_server.models import VectorSettings
from argilla_server.search_engine.base import SearchEngine
from argilla_server.search_engine.commons import es_index_name_for_dataset
from argilla_server.search_engine.opensearch import OpenSearchEngine
from opensearchpy.exceptions import ConflictError, NotFoundError

MAX_RETRIES = 20


class VectorSearchUnavailable(ValueError):
    pass


@dataclasses.dataclass
class OsmemEngine(OpenSearchEngine):
    """OpenSearchEngine without scripted updates (read-modify-write instead)."""

    async def _read_modify_write(self, index_name: str, doc_id: str,
                                 edit: Callable[[Dict[str, Any]], Dict[str, Any]]) -> None:
        for _ in range(MAX_RETRIES):
            try:
                doc = await self.client.get(index=index_name, id=doc_id)
            except NotFoundError:
                # Record not indexed (yet): the stock script update would 404 too.
                self._LOGGER.warning("record %s not in index %s; response not indexed", doc_id, index_name)
                return
            source = edit(dict(doc["_source"]))
            try:
                await self.client.index(index=index_name, id=doc_id, body=source, refresh=True,
                                        if_seq_no=doc["_seq_no"], if_primary_term=doc["_primary_term"])
                return
            except ConflictError:
                continue  # somebody wrote in between: re-read and re-apply
        raise RuntimeError(f"could not update document {doc_id} in {index_name}: too many conflicts")

    async def update_record_response(self, response) -> None:
        record = response.record
        es_response = self._jsonable(self._map_record_response_to_es(response))

        def edit(source):
            kept = [r for r in (source.get("responses") or []) if str(r.get("id")) != es_response["id"]]
            source["responses"] = kept + [es_response]
            return source

        await self._read_modify_write(es_index_name_for_dataset(record.dataset), str(record.id), edit)

    async def delete_record_response(self, response) -> None:
        record = response.record
        response_id = str(response.id)

        def edit(source):
            if source.get("responses") is not None:
                source["responses"] = [r for r in source["responses"] if str(r.get("id")) != response_id]
            return source

        await self._read_modify_write(es_index_name_for_dataset(record.dataset), str(record.id), edit)

    async def delete_record_suggestion(self, suggestion) -> None:
        name = suggestion.question.name

        def edit(source):
            suggestions = dict(source.get("suggestions") or {})
            suggestions.pop(name, None)
            source["suggestions"] = suggestions
            return source

        await self._read_modify_write(es_index_name_for_dataset(suggestion.record.dataset),
                                      str(suggestion.record_id), edit)

    async def _request_similarity_search(self, index: str, vector_settings: VectorSettings,
                                         value: List[float], k: int, excluded_id: Optional[UUID] = None,
                                         query_filters: Optional[List[dict]] = None) -> dict:
        raise VectorSearchUnavailable(
            "vector similarity search is unavailable on the local osmem search engine "
            "(no kNN); use OpenSearch/Elasticsearch or a hosted Argilla")

    @staticmethod
    def _jsonable(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: OsmemEngine._jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [OsmemEngine._jsonable(v) for v in value]
        if isinstance(value, UUID):
            return str(value)
        if hasattr(value, "value") and value.__class__.__module__.startswith("argilla_server"):
            return value.value  # enums (ResponseStatus)
        return value


def install_engine() -> type:
    """Register OsmemEngine as the "opensearch" engine (replacing the stock class)."""
    SearchEngine.registered_classes[SEARCH_ENGINE_OPENSEARCH] = OsmemEngine
    return OsmemEngine
