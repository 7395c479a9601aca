"""A GBNF grammar (llama.cpp's `grammar` field) that accepts exactly the codes in a trie.

The served path cannot pass a Python `prefix_allowed_tokens_fn`, but llama.cpp
accepts a GBNF grammar per request, so the trie is written out as one: one rule
per trie node whose alternatives are the code token strings of its children,
each followed by the child's rule (nothing after a leaf). Identical sub-trees
(e.g. every node whose children are `<d_0> | <d_1>`) share one rule, so the
grammar stays near the size of the trie's upper levels rather than one line
per item.

    root ::= n3
    n1 ::= "<d_0>" | "<d_1>"
    n3 ::= "<a_0>" n2 | "<a_1>" n1
    ...

llama.cpp matches grammar literals against token text, so a model that spells
`<a_12>` with ordinary tokens still writes a valid code; the parse back to an
item is by text (`SemanticIdTable.item_of`).

`GbnfMatcher` is a small matcher for the subset written here (rules, `|`,
string literals, rule references), used by the tests and by callers that want
to check a served answer against the grammar they sent.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

from recommend.trie import CodeTrie, _Node

RULE_NAME = re.compile(r"[a-zA-Z0-9-]+")


def gbnf_literal(text: str) -> str:
    """A GBNF double-quoted string for `text` (backslash, quote and control bytes escaped)."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ch in ("\x7f",):
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def code_grammar(trie: CodeTrie, token_of: Callable[[int], str] | Mapping[int, str],
                 end_literal: str | None = None) -> str:
    """GBNF accepting exactly the trie's codes as text; `token_of` maps a token id to its
    string (a tokenizer's `convert_ids_to_tokens` or a dict). `end_literal`: a closing
    text the served answer must end with (none when EOS closes it)."""
    lookup = token_of.__getitem__ if isinstance(token_of, Mapping) else token_of
    rules: dict[str, str] = {}  # body -> rule name (shared sub-trees)
    order: list[tuple[str, str]] = []

    top = _rule_names(trie.root, lookup, rules, order)
    if top is None:
        raise ValueError("empty trie: no grammar accepts nothing but EOS")
    root = top if end_literal is None else f"{top} {gbnf_literal(end_literal)}"
    lines = [f"root ::= {root}"] + [f"{name} ::= {body}" for name, body in order]
    return "\n".join(lines) + "\n"


def _rule_names(root: _Node, lookup, rules: dict[str, str], order: list) -> str | None:
    """Post-order walk (no recursion): a node's rule is written after its children's;
    returns the root's rule name (None for a leaf)."""
    names: dict[int, str | None] = {}
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in node.children.values())
            continue
        if not node.children:
            names[id(node)] = None
            continue
        alts = []
        for tid in sorted(node.children):
            sub = names[id(node.children[tid])]
            text = lookup(tid)
            if not isinstance(text, str) or not text:
                raise ValueError(f"token id {tid} has no text for the grammar")
            alts.append(gbnf_literal(text) + (f" {sub}" if sub else ""))
        body = " | ".join(alts)
        if body not in rules:
            rules[body] = f"n{len(rules)}"
            order.append((rules[body], body))
        names[id(node)] = rules[body]
    return names[id(root)]


# ---------------------------------------------------------------- matcher

class GrammarSyntaxError(ValueError):
    pass


def _parse_literal(src: str, i: int) -> tuple[str, int]:
    assert src[i] == '"'
    i += 1
    out = []
    escapes = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
    while i < len(src):
        ch = src[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            nxt = src[i + 1] if i + 1 < len(src) else ""
            if nxt in escapes:
                out.append(escapes[nxt])
                i += 2
                continue
            if nxt == "x":
                out.append(chr(int(src[i + 2:i + 4], 16)))
                i += 4
                continue
            raise GrammarSyntaxError(f"unsupported escape \\{nxt} at {i}")
        out.append(ch)
        i += 1
    raise GrammarSyntaxError("unterminated string literal")


class GbnfMatcher:
    """Full-string matcher for grammars made of rules, `|`, literals and rule names."""

    def __init__(self, grammar: str):
        self.rules: dict[str, list[list[tuple[str, str]]]] = {}
        for lineno, line in enumerate(grammar.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if "::=" not in line:
                raise GrammarSyntaxError(f"line {lineno}: no '::=' in {line[:60]!r}")
            name, body = (part.strip() for part in line.split("::=", 1))
            if not RULE_NAME.fullmatch(name):
                raise GrammarSyntaxError(f"line {lineno}: bad rule name {name!r}")
            self.rules[name] = self._parse_body(body, lineno)
        if "root" not in self.rules:
            raise GrammarSyntaxError("no root rule")
        for name, alts in self.rules.items():
            for seq in alts:
                for kind, value in seq:
                    if kind == "ref" and value not in self.rules:
                        raise GrammarSyntaxError(f"rule {name} refers to undefined rule {value}")

    @staticmethod
    def _parse_body(body: str, lineno: int) -> list[list[tuple[str, str]]]:
        alts: list[list[tuple[str, str]]] = [[]]
        i = 0
        while i < len(body):
            ch = body[i]
            if ch.isspace():
                i += 1
            elif ch == "|":
                alts.append([])
                i += 1
            elif ch == '"':
                text, i = _parse_literal(body, i)
                alts[-1].append(("lit", text))
            else:
                m = RULE_NAME.match(body, i)
                if not m:
                    raise GrammarSyntaxError(f"line {lineno}: unsupported syntax at {body[i:i + 20]!r}")
                alts[-1].append(("ref", m.group()))
                i = m.end()
        if any(not seq for seq in alts):
            raise GrammarSyntaxError(f"line {lineno}: empty alternative")
        return alts

    def _ends(self, rule: str, text: str, pos: int) -> set[int]:
        ends: set[int] = set()
        for seq in self.rules[rule]:
            positions = {pos}
            for kind, value in seq:
                nxt: set[int] = set()
                for p in positions:
                    if kind == "lit":
                        if text.startswith(value, p):
                            nxt.add(p + len(value))
                    else:
                        nxt |= self._ends(value, text, p)
                positions = nxt
                if not positions:
                    break
            ends |= positions
        return ends

    def matches(self, text: str) -> bool:
        return len(text) in self._ends("root", text, 0)
