"""The verifier against a real llama.cpp server (SmolLM2 for speed): answers come back
grammar-constrained and parsed, through the call cache, and a rerun is served from it."""

import pytest

from linernotes.records import HistoryEntry, Item, Listener
from linernotes.services.llamacpp import server
from synth.cache import CallCache, model_identity
from synth.verify import CachedChatEndpoint, VerifierVerdict, verify_claims

pytestmark = pytest.mark.integration


def _rows():
    listener = Listener(listener_id="l1", source="t", country="Canada", age_band="25-34",
                        history=[HistoryEntry(item_id="music:2", title="Highway To Hell", creator="AC/DC",
                                              genres=["Rock"])], taste=["Rock"])
    song = Item(item_id="music:1", item_type="music", title="Back In Black", creator="AC/DC",
                collection="Back In Black", genres=["Rock"], source="t", source_row="r1")
    book = Item(item_id="book:1", item_type="book", title="The Eternity Code", creator="Eoin Colfer",
                year=2003, genres=["Fantasy"], source="t", source_row="r2")
    return [
        ("AC/DC's Back In Black is a Rock pick after your Highway To Hell.", song, listener),
        ("Back In Black topped the charts for a year. It suits a Rock fan.", song, listener),
        ("The Eternity Code is a wizard-school mystery set in Dublin.", book, listener),
    ]


def test_verdicts_come_back_parsed_and_cached(gguf_path, tmp_path):
    cache = tmp_path / "cache.sqlite"
    with server(gguf_path, n_parallel=1) as srv:
        endpoint = CachedChatEndpoint(srv.base_url + "/v1", "smollm2-135m-instruct", cache,
                                      identity=model_identity(gguf_path), run_id="t")
        verdicts = [verify_claims(note, item, listener, endpoint) for note, item, listener in _rows()]
    assert all(isinstance(v, VerifierVerdict) for v in verdicts)
    parsed = [v for v in verdicts if v.status != "error"]
    # the JSON grammar makes the answer parse unless max_tokens cut it off
    assert len(parsed) >= 2, [v.error for v in verdicts]
    for v in parsed:
        assert v.checks and all(isinstance(c.supported, bool) for c in v.checks)
        assert v.latency_s is not None and v.latency_s > 0 and not v.cached
    stats = CallCache(cache).stats("t")
    assert stats["miss"] + stats["error"] == len(verdicts) and stats["miss"] >= len(parsed)
    # a rerun with the server gone is answered from the cache, with the same verdict
    again = CachedChatEndpoint("http://127.0.0.1:9/v1", "smollm2-135m-instruct", cache,
                               identity=model_identity(gguf_path), run_id="t2")
    k = verdicts.index(parsed[0])
    note, item, listener = _rows()[k]
    rerun = verify_claims(note, item, listener, again)
    assert rerun.cached and rerun.status == parsed[0].status and rerun.reasons == parsed[0].reasons
