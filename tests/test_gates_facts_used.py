"""facts_used entries written the way teachers and people write them."""

from linernotes.domain.gates import run_gates
from linernotes.records import HistoryEntry, Item, Listener


def _pair():
    item = Item(item_id="music:1", item_type="music", title="Clash City Rockers", creator="The Clash",
                collection="The Singles", genres=["Alternative & Punk"], duration_s=228,
                source="test", source_row="1")
    listener = Listener(listener_id="l1", source="test", taste=["Alternative & Punk"],
                        history=[HistoryEntry(item_id="music:2", title="London Calling", creator="The Clash")])
    return item, listener


def _grounding(facts):
    item, listener = _pair()
    note = "Clash City Rockers, from The Clash's The Singles, is under four minutes of punk for your list."
    return run_gates(note, facts, item, listener, None)["grounding"]


def test_a_duration_with_its_unit_is_the_items_duration():
    for entry in ("3.8 min", "3.8 minutes", "3.8min", "duration_min: 3.8", "duration: 3.8 min"):
        g = _grounding(["Clash City Rockers", entry])
        assert g.passed, (entry, g.reasons)


def test_a_wrong_duration_with_its_unit_still_fails():
    for entry in ("5.5 min", "duration: 6 minutes"):
        g = _grounding(["Clash City Rockers", entry])
        assert not g.passed and any(entry in r for r in g.reasons), (entry, g.reasons)
