"""Text sets: CLINC150's JSON layout and text,label CSV files by path, the tokenizer, and the
errors that stop bad input before anything trains."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from text_fakes import INTENTS, intent_parts, write_csv, write_json

from uqbench import data
from uqbench.data import DataError, tokenize
from uqbench.data.text import load_text


def test_json_layout_gives_ids_labels_and_the_out_of_scope_sets(tmp_path):
    parts = intent_parts()
    path = write_json(tmp_path / "intents.json", parts)
    (tmp_path / "domains.json").write_text(json.dumps({"life": ["weather"], "fun": ["music"]}))
    d = load_text(path)
    assert d.name == "intents" and d.class_names == tuple(sorted(INTENTS))
    assert d.data_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert d.domains == {"life": ("weather",), "fun": ("music",)}
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (60, 15, 30)
    assert (len(d.ood_val), len(d.ood_test)) == (6, 12)
    # Labels index the sorted class names; ids are the tokenizer's, right-padded with 0.
    for (text, label), ids, y in zip(parts["test"], d.x_test, d.y_test, strict=True):
        assert d.class_names[int(y)] == label
        expected = d.tokenizer.encode(text).ids
        assert ids[: len(expected)].tolist() == expected
        assert not ids[len(expected) :].any()
    assert torch.equal(d.x_test, d.encode([t for t, _ in parts["test"]]))
    # The same file through the registry, by path.
    again = data.get(str(path))
    assert torch.equal(again.x_train, d.x_train) and again.class_names == d.class_names


def test_vocabulary_is_characters_then_words_by_frequency_and_deterministic():
    texts = ["b a b", "c b", "dd a"]
    tok = tokenize.build_tokenizer(texts, vocab_size=16)
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    # [PAD], [UNK], characters a b c d, their ## twins, then words by count (ties alphabetical):
    # b (3 times) and a (2) are characters already; c, dd: c is a character, so dd.
    assert [t for t, _ in vocab] == [
        "[PAD]", "[UNK]", "a", "b", "c", "d", "##a", "##b", "##c", "##d", "dd"
    ]  # fmt: skip
    assert tok.encode("dd b").ids == [10, 3]
    assert tok.encode("ddd x").tokens == ["dd", "##d", "[UNK]"]  # unseen word -> pieces
    assert tok.encode("B  A").ids == [3, 2]  # lower-cased
    again = tokenize.build_tokenizer(texts, vocab_size=16)
    assert again.to_str() == tok.to_str()
    # 8 characters; word c+c appears i + 1 times: 2 + 16 entries, then the 2 most frequent.
    texts = [" ".join([c + c] * (i + 1)) for i, c in enumerate("abcdefgh")]
    big = tokenize.build_tokenizer(texts, vocab_size=20)
    assert big.get_vocab_size() == 20 and {"hh", "gg"} < set(big.get_vocab()) - {"ff"}
    with pytest.raises(DataError, match="too small"):
        tokenize.build_tokenizer(["abcdefghij"], vocab_size=16)


def test_encode_cuts_pads_and_trim_padding_keeps_the_longest_row():
    tok = tokenize.build_tokenizer(["a b c d e"], vocab_size=32)
    ids = tokenize.encode(tok, ["a b c d e", "a"], max_length=3)
    assert ids.tolist() == [tok.encode("a b c").ids, [tok.token_to_id("a"), 0, 0]]
    batch = torch.tensor([[5, 6, 0, 0, 0], [7, 0, 0, 0, 0]])
    assert tokenize.trim_padding(batch, 0).tolist() == [[5, 6], [7, 0]]
    assert tokenize.trim_padding(torch.zeros(2, 4, dtype=torch.int64), 0).shape == (2, 1)


def test_a_saved_tokenizer_json_is_used_as_is(tmp_path):
    path = write_json(tmp_path / "intents.json")
    d = load_text(path)
    d.tokenizer.save(str(tmp_path / "tokenizer.json"))
    other = load_text(path, tokenizer=tmp_path / "tokenizer.json")
    assert torch.equal(other.x_test, d.x_test) and other.pad_id == 0
    with pytest.raises(DataError, match="not a Hugging Face tokenizer"):
        load_text(path, tokenizer=path)


def test_csv_with_and_without_a_split_column(tmp_path):
    parts = intent_parts()
    rows = [[t, label, split] for split, pairs in parts.items() for t, label in pairs]
    with_split = load_text(write_csv(tmp_path / "a.csv", rows, ("text", "label", "split")))
    from_json = load_text(write_json(tmp_path / "a.json", parts))
    assert torch.equal(with_split.x_test, from_json.x_test)
    assert torch.equal(with_split.ood_test.inputs, from_json.ood_test.inputs)
    # No split column: in-scope rows 80/20 stratified, oos rows halved, validation carved out.
    plain = [[t, label] for t, label in parts["train"] + parts["oos_test"]]
    d = load_text(write_csv(tmp_path / "b.csv", plain), validation_fraction=0.25)
    assert np.bincount(d.y_test.numpy()).tolist() == [4, 4, 4]
    assert np.bincount(d.y_val.numpy()).tolist() == [4, 4, 4]
    assert len(d.y_train) == 36 and (len(d.ood_val), len(d.ood_test)) == (6, 6)
    assert data.get(str(tmp_path / "b.csv")).num_classes == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.pop("test"), "has no test"),
        (lambda p: p["train"].append(["   ", "music"]), r"train\[60\] has an empty text"),
        (lambda p: p["test"].append(["play jazz", "cooking"]), "never has: cooking"),
        (lambda p: p["val"].append(["hello"]), r"val\[15\] is \['hello'\]"),
        (lambda p: p.update(train=[["a b", "music"]]), "needs at least two"),
    ],
)
def test_bad_json_is_refused_with_a_clear_error(tmp_path, change, message):
    parts = intent_parts()
    change(parts)
    path = write_json(tmp_path / "bad.json", parts)
    with pytest.raises(DataError, match=message):
        load_text(path)


def test_other_bad_input(tmp_path):
    with pytest.raises(DataError, match="not valid JSON"):
        (tmp_path / "x.json").write_text("{")
        load_text(tmp_path / "x.json")
    with pytest.raises(DataError, match="expected a JSON object"):
        load_text(write_json(tmp_path / "list.json", [1, 2]))
    with pytest.raises(DataError, match="split 'dev' is not one of"):
        load_text(write_csv(tmp_path / "s.csv", [["a", "b", "dev"]], ("text", "label", "split")))
    with pytest.raises(DataError, match="not a text set"):
        load_text(write_csv(tmp_path / "t.csv", [["1", "2"]], ("x", "y")))
    with pytest.raises(DataError, match="unknown text set"):
        load_text("clinc151")
    with pytest.raises(DataError, match="missing.json does not exist"):
        load_text(tmp_path / "missing.json")
    with pytest.raises(DataError, match="clinc150/data_full.json not found"):
        load_text("clinc150", data_dir=tmp_path)
    assert "clinc150" in data.names("text")


def test_real_clinc150(clinc_dir):
    d = data.get_text("clinc150", data_dir=clinc_dir)
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (15000, 3000, 4500)
    assert (len(d.ood_val), len(d.ood_test)) == (100, 1000)
    assert d.num_classes == 150 and d.vocab_size == tokenize.DEFAULT_VOCAB_SIZE
    assert np.bincount(d.y_train.numpy()).tolist() == [100] * 150
    assert len(d.domains) == 10 and sum(map(len, d.domains.values())) == 150
    assert d.x_train.shape[1] <= 64 and int((d.x_test == 1).sum()) == 0
