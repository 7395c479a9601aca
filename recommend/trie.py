"""A prefix trie over semantic-ID token ids, for constrained decoding.

Every item's code, e.g. `<a_12><b_7><c_3><d_1>`, is one special token per
level (the last level is the de-duplication digit), so a code is a fixed-length
sequence of token ids followed by an end token (EOS, `<|im_end|>` for SmolLM2's
ChatML, or any closing token the caller names). Beam search restricted by the
trie can only ever write a code that names an item:

    trie = CodeTrie.from_codes(table.codes(), tokenizer.convert_tokens_to_ids, tokenizer.eos_token_id)
    out = model.generate(**inputs, **beam_search_kwargs(trie, prompt_len, num_beams=20, k=10))

`allowed_next(prefix)` is never empty: past a leaf (or off the trie, which a
constrained search cannot reach but a caller can ask about) it allows only the
end token, so a beam is closed instead of left with nothing to choose.

`beam_search_kwargs` sets `do_sample=False, top_k=None, top_p=None,
temperature=None` explicitly: an instruct model's generation_config (SmolLM2's
hub one has temperature 0.2, top_p 0.9) would otherwise be merged in, and a
top-k/top-p warper prunes the beam candidates silently, so fewer than K
distinct codes come back.

Nothing heavy is imported here; torch is only touched through the ids HF passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

CODE_TOKEN = re.compile(r"<[A-Za-z]+_\d+>")


class CodeError(ValueError):
    """A code string that is not a run of level tokens, or a token the tokenizer lacks."""


def split_code(code: str) -> list[str]:
    """`"<a_12><b_7>"` -> `["<a_12>", "<b_7>"]`; anything else between tokens is an error."""
    tokens = CODE_TOKEN.findall(code)
    if not tokens or "".join(tokens) != code:
        raise CodeError(f"not a semantic-ID code (expected tokens like <a_12><b_7>...): {code!r}")
    return tokens


@dataclass
class _Node:
    children: dict[int, "_Node"] = field(default_factory=dict)
    code: str | None = None  # set on the node reached by a whole code
    count: int = 0  # codes at or below this node


class CodeTrie:
    """Token-id prefix trie of all codes; each path ends with `end_id`."""

    def __init__(self, end_id: int):
        self.end_id = int(end_id)
        self.root = _Node()
        self.depth = 0  # tokens in the longest code, end token excluded
        self._n_codes = 0

    # ------------------------------------------------------------ building

    @classmethod
    def from_codes(cls, codes: Iterable[str], token_to_id: Callable[[str], int] | Mapping[str, int],
                   end_id: int) -> "CodeTrie":
        """Codes as strings; `token_to_id` maps one code token to its id (a tokenizer's
        `convert_tokens_to_ids` or a dict). A token that maps to nothing (or to the
        unknown id, the same for every missing token) is a `CodeError` naming it."""
        lookup = token_to_id.__getitem__ if isinstance(token_to_id, Mapping) else token_to_id
        trie = cls(end_id)
        seen_ids: dict[int, str] = {}
        for code in codes:
            ids = []
            for tok in split_code(code):
                try:
                    tid = lookup(tok)
                except KeyError:
                    tid = None
                if tid is None or (tid in seen_ids and seen_ids[tid] != tok):
                    raise CodeError(f"code {code!r}: token {tok!r} has no id of its own in the "
                                    f"vocabulary (add the table's token_vocab() first)")
                seen_ids[int(tid)] = tok
                ids.append(int(tid))
            trie.add(ids, code)
        if trie._n_codes == 0:
            raise CodeError("no codes: the trie would allow nothing but the end token")
        return trie

    def add(self, token_ids: Sequence[int], code: str | None = None) -> None:
        if not token_ids:
            raise CodeError("an empty code")
        if self.end_id in token_ids:
            raise CodeError(f"code {code!r} contains the end token id {self.end_id}")
        node = self.root
        path = [node]
        for tid in token_ids:
            node = node.children.setdefault(int(tid), _Node())
            path.append(node)
        if node.children:
            raise CodeError(f"code {code!r} is a prefix of another code (codes must all be leaves)")
        if node.code is not None and node.code != code:
            raise CodeError(f"codes {node.code!r} and {code!r} have the same token ids")
        if node.code is None:
            self._n_codes += 1
            for on_path in path:
                on_path.count += 1
        node.code = code if code is not None else ""
        self.depth = max(self.depth, len(token_ids))

    def __len__(self) -> int:
        return self._n_codes

    # ------------------------------------------------------------ querying

    def _walk(self, prefix_ids: Sequence[int]) -> _Node | None:
        node = self.root
        for tid in prefix_ids:
            node = node.children.get(int(tid))
            if node is None:
                return None
        return node

    def allowed_next(self, prefix_ids: Sequence[int], banned: Mapping[int, int] | None = None) -> list[int]:
        """Token ids that may follow `prefix_ids` (the generated part only); never empty.
        `banned` (from `banned_counts`) removes codes, e.g. the items a listener already has:
        a child whose every code is banned is not allowed."""
        node = self._walk(prefix_ids)
        if node is None or not node.children:  # a leaf, past the end, or off the trie
            return [self.end_id]
        if banned:
            open_ids = [t for t, c in node.children.items() if c.count > banned.get(id(c), 0)]
            return sorted(open_ids) if open_ids else [self.end_id]
        return sorted(node.children)

    def banned_counts(self, codes_ids: Iterable[Sequence[int]]) -> dict[int, int]:
        """Per trie node (by identity), how many of these codes lie below it; codes not in the
        trie are ignored. Pass the result to `allowed_next(..., banned=)`."""
        counts: dict[int, int] = {}
        for ids in {tuple(int(t) for t in c) for c in codes_ids}:
            node, path = self.root, []
            for tid in ids:
                node = node.children.get(tid)
                if node is None:
                    break
                path.append(node)
            else:
                if not node.children and node.code is not None:
                    for on_path in path:
                        counts[id(on_path)] = counts.get(id(on_path), 0) + 1
        return counts

    def ids_of_code(self, code: str, token_to_id: Callable[[str], int] | Mapping[str, int]) -> list[int]:
        lookup = token_to_id.__getitem__ if isinstance(token_to_id, Mapping) else token_to_id
        return [int(lookup(t)) for t in split_code(code)]

    def code_of_ids(self, token_ids: Sequence[int]) -> str | None:
        """The code a generated id sequence spells (end/pad tokens after it ignored), or None."""
        ids = [int(t) for t in token_ids]
        while ids and ids[-1] == self.end_id:
            ids.pop()
        node = self._walk(ids)
        if node is None or node.children or node.code is None:
            return None
        return node.code

    def paths(self) -> Iterable[tuple[list[int], str]]:
        """Every (token ids, code) in the trie, depth first, children in id order."""
        stack: list[tuple[_Node, list[int]]] = [(self.root, [])]
        while stack:
            node, ids = stack.pop()
            if not node.children and node.code is not None:
                yield ids, node.code
            for tid in sorted(node.children, reverse=True):
                stack.append((node.children[tid], ids + [tid]))

    # ------------------------------------------------------------ HF generate

    def prefix_allowed_tokens_fn(self, prompt_length: int, banned: Mapping[int, int] | None = None) -> Callable:
        """For `generate(prefix_allowed_tokens_fn=...)`: HF passes the whole row (prompt +
        generated); the prompt is left-padded to one length, so the generated part starts
        at `prompt_length` for every row and beam."""
        start = int(prompt_length)

        def allowed(batch_id: int, input_ids) -> list[int]:
            return self.allowed_next(input_ids[start:].tolist(), banned)

        return allowed


def beam_search_kwargs(trie: CodeTrie, prompt_length: int, num_beams: int, k: int,
                       pad_token_id: int | None = None, banned: Mapping[int, int] | None = None) -> dict:
    """`generate` kwargs for top-K codes by constrained beam search, sampling explicitly off."""
    if k < 1 or num_beams < k:
        raise ValueError(f"need 1 <= k <= num_beams, got k={k}, num_beams={num_beams}")
    return {
        "num_beams": int(num_beams),
        "num_return_sequences": int(k),
        "do_sample": False,
        # None, not the defaults: the model's generation_config would fill them in
        "top_k": None,
        "top_p": None,
        "temperature": None,
        "max_new_tokens": trie.depth + 1,
        "min_new_tokens": None,
        "early_stopping": True,
        "length_penalty": 0.0,  # every code has the same length; rank by total log-prob
        "eos_token_id": trie.end_id,
        "pad_token_id": trie.end_id if pad_token_id is None else int(pad_token_id),
        "prefix_allowed_tokens_fn": trie.prefix_allowed_tokens_fn(prompt_length, banned),
        "output_scores": True,
        "return_dict_in_generate": True,
    }
