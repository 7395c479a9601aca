"""`CatalogIndex`: every name and genre label of a catalog, so the grounding
gate can tell a wrong entity (a real name of another item) from an invented one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from linernotes.records import Item, Listener
from linernotes.domain.gates.normalize import description_people, name_key, split_people, title_variants
from linernotes.domain.gates.vocab import GENRE_CUES, GenreEntry, builtin_genres, catalog_genre_entry, genre_words_of, phrase_key

KIND_TITLE, KIND_CREATOR, KIND_COLLECTION, KIND_PUBLISHER = 1, 2, 4, 8


def kind_word(flags: int) -> str:
    if flags & KIND_CREATOR:
        return "creator"
    if flags & KIND_TITLE and flags & KIND_COLLECTION:
        return "title/album"
    if flags & KIND_TITLE:
        return "title"
    if flags & KIND_COLLECTION:
        return "album"
    if flags & KIND_PUBLISHER:
        return "publisher"
    return "name"


@dataclass
class CatalogIndex:
    """Normalised names and genre labels of a whole catalog, for telling a
    wrong entity (a real name, but of another item) from an invented one.

    `names` maps `name_key(...)` -> bit flags of KIND_TITLE / KIND_CREATOR /
    KIND_COLLECTION / KIND_PUBLISHER. Creator lists are indexed whole and per
    person. ~280k items build in a few seconds."""

    names: dict[str, int] = field(default_factory=dict)
    genre_labels: dict[str, str] = field(default_factory=dict)  # phrase key -> label as written
    n_items: int = 0
    _vocab: dict[str, GenreEntry] | None = field(default=None, repr=False, compare=False)
    _words: frozenset[str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_items(cls, items: Iterable[Item] | Mapping[str, Item],
                   listeners: Iterable[Listener] | None = None) -> "CatalogIndex":
        if isinstance(items, Mapping):
            items = items.values()
        names: dict[str, int] = {}
        get = names.get
        person_cache: dict[str, list[str]] = {}
        title_cache: dict[str, set[str]] = {}
        genres: dict[str, str] = {}

        def add_people(text: str) -> None:
            keys = person_cache.get(text)
            if keys is None:
                keys = list({name_key(text), *(name_key(p) for p in split_people(text))} - {""})
                person_cache[text] = keys
            for k in keys:
                names[k] = get(k, 0) | KIND_CREATOR

        def add_title(text: str, kind: int, cache: bool) -> None:
            keys = title_cache.get(text) if cache else None
            if keys is None:
                keys = title_variants(text)
                if cache:
                    title_cache[text] = keys
            for k in keys:
                names[k] = get(k, 0) | kind

        n = 0
        for it in items:
            n += 1
            add_title(it.title, KIND_TITLE, False)
            if it.creator:
                add_people(it.creator)
            if it.collection:
                add_title(it.collection, KIND_COLLECTION, True)
            if it.publisher:
                add_title(it.publisher, KIND_PUBLISHER, True)
            for g in it.genres:
                if g not in genres:
                    genres[g] = phrase_key(g)
            if it.description and "by" in it.description:
                for person in description_people(it.description):
                    add_people(person)
        for lst in listeners or ():
            for h in lst.history:
                add_title(h.title, KIND_TITLE, True)
                if h.creator:
                    add_people(h.creator)
                for g in h.genres:
                    if g not in genres:
                        genres[g] = phrase_key(g)
            for g in lst.taste:
                if g not in genres:
                    genres[g] = phrase_key(g)
        names.pop("", None)
        labels = {p: g for g, p in genres.items() if p}
        return cls(names=names, genre_labels=labels, n_items=n)

    def kind(self, name: str) -> int:
        """Kind flags of a raw name (0 when not in the catalog)."""
        return self.names.get(name_key(name), 0)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.kind(name) != 0

    def genre_words(self) -> frozenset[str]:
        if self._words is None:
            self._words = genre_words_of(self.genre_vocab())
        return self._words

    def genre_vocab(self) -> dict[str, GenreEntry]:
        """Built-in genre vocabulary plus this catalog's genre labels."""
        if self._vocab is None:
            base = builtin_genres()
            vocab = dict(base)
            for phrase in self.genre_labels:
                if phrase in GENRE_CUES:
                    continue  # a label like "music" is too common a word to read as a genre claim
                if phrase not in vocab:
                    vocab[phrase] = catalog_genre_entry(phrase, base)
            # a podcast sub-category said on its own ("an investing show" for "business-investing"):
            # an ambiguous phrase with no broader genre, so "business" never supports it
            labels = set(self.genre_labels)
            for phrase in self.genre_labels:
                toks = phrase.split()
                for i in range(1, len(toks)):
                    head, tail = " ".join(toks[:i]), " ".join(toks[i:])
                    if head in labels and tail not in vocab and tail not in GENRE_CUES:
                        vocab[tail] = GenreEntry(tail, frozenset(), True)
                    # "a comedy interview show" for "comedy-comedy-interviews": the singular too
                    one = tail[:-1] if tail.endswith("s") and not tail.endswith("ss") and len(tail) > 5 else ""
                    if head in labels and one and one not in vocab and one not in GENRE_CUES \
                            and one.split()[-1] not in GENRE_CUES:
                        vocab[one] = GenreEntry(tail, frozenset(), True)
            self._vocab = vocab
        return self._vocab
