"""The code trie, constrained beam search over it, and the GBNF grammar written from it.

The semantic-ID table here is a stand-in (H5's recommend/semantic_ids.py is
built in parallel): a few codes over 3 levels + a de-dup digit, the shape the
real table has.
"""

from __future__ import annotations

import itertools

import pytest

from recommend.grammar import GbnfMatcher, GrammarSyntaxError, code_grammar, gbnf_literal
from recommend.trie import CodeError, CodeTrie, beam_search_kwargs, split_code

END = 2

STANDIN_CODES = [
    "<a_0><b_1><c_0><d_0>",
    "<a_0><b_1><c_0><d_1>",
    "<a_0><b_2><c_3><d_0>",
    "<a_1><b_1><c_0><d_0>",
    "<a_1><b_0><c_2><d_0>",
    "<a_2><b_2><c_2><d_0>",
    "<a_2><b_2><c_2><d_1>",
    "<a_2><b_2><c_2><d_2>",
]


def standin_vocab(codes=STANDIN_CODES, first_id=10) -> dict[str, int]:
    """Token -> id for the stand-in codes, ids from `first_id` on (below: specials)."""
    tokens = sorted({t for c in codes for t in split_code(c)})
    return {t: first_id + i for i, t in enumerate(tokens)}


@pytest.fixture
def vocab():
    return standin_vocab()


@pytest.fixture
def trie(vocab):
    return CodeTrie.from_codes(STANDIN_CODES, vocab, END)


def ids_of(code, vocab):
    return [vocab[t] for t in split_code(code)]


# ---------------------------------------------------------------- trie

def test_split_code_rejects_text_between_tokens():
    assert split_code("<a_12><b_7><c_3><d_1>") == ["<a_12>", "<b_7>", "<c_3>", "<d_1>"]
    for bad in ("", "a_1", "<a_1> <b_2>", "<a_1><b_2>x", "<a_x>"):
        with pytest.raises(CodeError):
            split_code(bad)


def test_every_code_is_a_path_and_nothing_else(trie, vocab):
    assert len(trie) == len(STANDIN_CODES)
    assert trie.depth == 4
    found = {code for _ids, code in trie.paths()}
    assert found == set(STANDIN_CODES)
    for code in STANDIN_CODES:
        ids = ids_of(code, vocab)
        for n in range(len(ids)):
            assert ids[n] in trie.allowed_next(ids[:n])
        assert trie.allowed_next(ids) == [END]
        assert trie.code_of_ids(ids + [END, END]) == code
    assert trie.code_of_ids(ids_of(STANDIN_CODES[0], vocab)[:3]) is None  # a prefix is no code


def test_allowed_next_follows_the_codes(trie, vocab):
    assert trie.allowed_next([]) == sorted(vocab[t] for t in ("<a_0>", "<a_1>", "<a_2>"))
    assert trie.allowed_next([vocab["<a_1>"]]) == sorted([vocab["<b_0>"], vocab["<b_1>"]])
    prefix = [vocab[t] for t in ("<a_2>", "<b_2>", "<c_2>")]
    assert trie.allowed_next(prefix) == [vocab["<d_0>"], vocab["<d_1>"], vocab["<d_2>"]]


def test_allowed_next_is_never_empty(trie, vocab):
    off_trie = [vocab["<a_1>"], vocab["<b_2>"]]  # <a_1><b_2> names no item
    past_end = ids_of(STANDIN_CODES[0], vocab) + [END, END]
    garbage = [999, 998]
    for prefix in (off_trie, past_end, garbage):
        assert trie.allowed_next(prefix) == [END]
    # exhaustive over all short prefixes of code-token ids: never an empty set
    for n in range(0, 4):
        for prefix in itertools.product(sorted(vocab.values())[:6], repeat=n):
            assert trie.allowed_next(list(prefix))


def test_bad_codes_are_refused_with_the_code_named(vocab):
    with pytest.raises(CodeError, match="<z_9>"):
        CodeTrie.from_codes(["<z_9><b_1>"], vocab, END)
    with pytest.raises(CodeError, match="prefix"):
        CodeTrie.from_codes(["<a_0><b_1><c_0><d_0>", "<a_0><b_1><c_0>"], vocab, END)
    with pytest.raises(CodeError, match="no codes"):
        CodeTrie.from_codes([], vocab, END)
    # a tokenizer that maps every unknown token to the same unk id
    unk = lambda tok: 0  # noqa: E731
    with pytest.raises(CodeError, match="no id of its own"):
        CodeTrie.from_codes(["<a_0><b_1>", "<a_1><b_1>"], unk, END)


def test_beam_kwargs_turn_sampling_off_explicitly(trie):
    kw = beam_search_kwargs(trie, prompt_length=7, num_beams=8, k=5)
    assert kw["do_sample"] is False
    assert kw["top_k"] is None and kw["top_p"] is None and kw["temperature"] is None
    assert kw["num_beams"] == 8 and kw["num_return_sequences"] == 5
    assert kw["max_new_tokens"] == trie.depth + 1
    with pytest.raises(ValueError):
        beam_search_kwargs(trie, 7, num_beams=3, k=5)


# ---------------------------------------------------------------- HF generate

def _tiny_model(vocab_size=40, seed=0):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=64, bos_token_id=1, eos_token_id=END,
                                   pad_token_id=END, tie_word_embeddings=True)
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # spread the logits so the ranking of codes is clear-cut
        model.get_input_embeddings().weight.mul_(20.0)
    # An instruct-style generation config: sampling on, top_k=1 and a tiny top_p. Left to
    # apply, they would prune the beam to (near) one candidate and make the output random.
    model.generation_config = transformers.GenerationConfig(
        do_sample=True, top_k=1, top_p=0.05, temperature=0.2, eos_token_id=END, pad_token_id=END,
        bos_token_id=1)
    return torch, model


def _exhaustive_scores(torch, model, prompt, trie):
    """Total log-prob (code tokens + end token) of every code, by teacher forcing."""
    out = {}
    for ids, code in trie.paths():
        seq = torch.tensor([prompt + ids + [trie.end_id]])
        with torch.no_grad():
            logp = torch.log_softmax(model(seq).logits[0].float(), dim=-1)
        n = len(prompt)
        out[code] = float(sum(logp[n - 1 + j, seq[0, n + j]] for j in range(len(ids) + 1)))
    return out


def test_constrained_beam_search_returns_k_distinct_valid_codes_in_score_order(trie):
    torch, model = _tiny_model()
    prompt = [1, 33, 35, 31, 37]
    inputs = torch.tensor([prompt])
    k = len(STANDIN_CODES)  # beam width = number of codes: the search is exhaustive
    out = model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs),
                         **beam_search_kwargs(trie, len(prompt), num_beams=k, k=k))
    generated = out.sequences[:, len(prompt):].tolist()
    codes = [trie.code_of_ids(g) for g in generated]
    assert None not in codes  # valid-code rate 100%
    assert len(set(codes)) == k
    exhaustive = _exhaustive_scores(torch, model, prompt, trie)
    expected_order = sorted(exhaustive, key=exhaustive.get, reverse=True)
    assert codes == expected_order
    got = out.sequences_scores.tolist()
    assert got == pytest.approx([exhaustive[c] for c in codes], abs=1e-3)
    # deterministic: the inherited do_sample/top_k/top_p did not leak in
    again = model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs),
                           **beam_search_kwargs(trie, len(prompt), num_beams=k, k=k))
    assert again.sequences.tolist() == out.sequences.tolist()


def test_left_padded_batch_uses_the_padded_prompt_length(trie):
    torch, model = _tiny_model(seed=1)
    rows = [[1, 33, 35, 31, 37], [1, 36, 34]]
    width = max(map(len, rows))
    ids = torch.tensor([[END] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    out = model.generate(input_ids=ids, attention_mask=mask,
                         **beam_search_kwargs(trie, width, num_beams=4, k=3))
    codes = [trie.code_of_ids(g) for g in out.sequences[:, width:].tolist()]
    assert len(codes) == 6 and None not in codes
    assert len(set(codes[:3])) == 3 and len(set(codes[3:])) == 3


# ---------------------------------------------------------------- grammar

def _grammar(trie, vocab, **kw):
    token_of = {i: t for t, i in vocab.items()}
    return code_grammar(trie, token_of, **kw)


def test_grammar_accepts_every_code_and_nothing_else(trie, vocab):
    grammar = _grammar(trie, vocab)
    matcher = GbnfMatcher(grammar)
    for code in STANDIN_CODES:
        assert matcher.matches(code), code
    non_codes = ["", "<a_0>", "<a_0><b_1><c_0>", "<a_1><b_2><c_0><d_0>",  # off the trie
                 "<a_0><b_1><c_0><d_0><d_0>", "<a_0><b_1><c_0><d_0> ", "<a_0> <b_1><c_0><d_0>",
                 "<a_0><b_1><c_0><d_9>", "Here: <a_0><b_1><c_0><d_0>"]
    for text in non_codes:
        assert not matcher.matches(text), text
    # every 4-token combination of the vocabulary is accepted iff it is a code
    by_level = [sorted(t for t in vocab if t.startswith(f"<{lv}_")) for lv in "abcd"]
    for combo in itertools.product(*by_level):
        text = "".join(combo)
        assert matcher.matches(text) == (text in STANDIN_CODES), text


def test_grammar_shares_identical_subtrees(trie, vocab):
    grammar = _grammar(trie, vocab)
    lines = grammar.strip().splitlines()
    assert lines[0].startswith("root ::= ")
    bodies = [ln.split("::=", 1)[1].strip() for ln in lines[1:]]
    assert len(bodies) == len(set(bodies))
    # "<d_0>" alone closes 4 different <c_*> nodes: written once
    assert bodies.count('"<d_0>"') == 1


def test_grammar_with_closing_literal(trie, vocab):
    matcher = GbnfMatcher(_grammar(trie, vocab, end_literal="</code>"))
    assert matcher.matches(STANDIN_CODES[3] + "</code>")
    assert not matcher.matches(STANDIN_CODES[3])


def test_literals_escape_quotes_and_backslashes():
    assert gbnf_literal('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    text = 'say "hi" \\ ok'
    matcher = GbnfMatcher("root ::= " + gbnf_literal(text) + "\n")
    assert matcher.matches(text)
    assert not matcher.matches('say "hi" \\\\ ok')


def test_matcher_refuses_grammars_it_cannot_read():
    with pytest.raises(GrammarSyntaxError, match="root"):
        GbnfMatcher('code ::= "x"\n')
    with pytest.raises(GrammarSyntaxError, match="undefined"):
        GbnfMatcher('root ::= "x" n9\n')
    with pytest.raises(GrammarSyntaxError, match="unsupported"):
        GbnfMatcher('root ::= [a-z]+\n')
