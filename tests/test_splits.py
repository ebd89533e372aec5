"""Zero-shot split registry: packaged lists vs the sources' files and the reference specs,
user split files, dataset checks and the model-selection helpers."""
import json
import re

import numpy as np
import pytest

from conftest import need
from zeroskel.data.dataset import SkeletonDataset
from zeroskel.data.registry import DATASETS
from zeroskel.data.splits import (ZeroShotSplit, get_split, list_splits, load_split_file,
                                  stratified_holdout)
from zeroskel.errors import ConfigError, DataError

PURLS_DIRS = {"ntu60": "ntu60", "ntu120": "ntu120", "nw_ucla": "nw-ucla", "utd_mhad": "utd-mhad"}


def _npy(root, rel):
    return sorted(np.load(need(root, rel)).tolist())


# ---------------------------------------------------------------------- registry itself
def test_every_split_is_consistent():
    splits = list_splits()
    assert len(splits) >= 46
    for sp in splits:
        assert sp.dataset in DATASETS and sp.num_classes == DATASETS[sp.dataset].num_classes
        assert set(sp.seen).isdisjoint(sp.unseen)
        assert sp.citation and sp.repo and sp.file, sp.name
        m = re.fullmatch(r"[a-z]+(?:-[a-z]+)*-(\d+)/(\d+)", sp.name)
        if m:  # '<source>-<seen>/<unseen>' names tell the sizes
            assert (len(sp.seen), len(sp.unseen)) == (int(m[1]), int(m[2])), sp.name
        else:
            assert re.fullmatch(r"[a-z]+-\d", sp.name), sp.name
        if sp.kind == "benchmark":
            assert sorted(sp.seen + sp.unseen) == list(range(sp.num_classes))
        else:
            parent = get_split(sp.dataset, sp.parent)
            assert sorted(sp.seen + sp.unseen) == sorted(parent.seen)


def test_expected_names_per_dataset():
    names = {ds: {s.name for s in list_splits(ds)} for ds in ("ntu60", "ntu120", "pku_mmd1", "nw_ucla", "utd_mhad")}
    assert {"synse-55/5", "synse-48/12", "synse-orig-48/12", "purls-40/20", "purls-30/30",
            "smie-1", "smie-2", "smie-3", "sadvae-1", "starsmie-3"} <= names["ntu60"]
    assert {"synse-110/10", "synse-96/24", "purls-80/40", "purls-60/60", "smie-3", "sadvae-3"} <= names["ntu120"]
    assert {"smie-1", "smie-3", "starsmie-3", "sadvae-2", "star-46/5", "star-39/12"} <= names["pku_mmd1"]
    assert names["nw_ucla"] == {"purls-8/2", "purls-5/5"}
    assert names["utd_mhad"] == {"purls-22/5", "purls-18/9", "purls-14/13"}
    assert list_splits("pku_mmd2") == []
    assert all(s.kind == "validation" for s in list_splits(kind="validation"))


def test_aliases_and_distinct_lists():
    assert get_split("ntu60", "sadave-2") is get_split("ntu60", "sadvae-2")
    assert get_split("ntu60", "purls-55/5") is get_split("ntu60", "synse-55/5")
    # The field's 48/12 and SynSE's own file are different lists, kept under two names.
    assert get_split("ntu60", "synse-48/12").unseen != get_split("ntu60", "synse-orig-48/12").unseen
    # Flora's PKU starsmie-3 is not SMIE's third PKU split; its first two are SMIE's 2nd/3rd.
    pku = {n: get_split("pku_mmd1", n).unseen for n in ("smie-1", "smie-2", "smie-3", "starsmie-1",
                                                       "starsmie-2", "starsmie-3", "star-46/5")}
    assert pku["starsmie-3"] not in (pku["smie-1"], pku["smie-2"], pku["smie-3"])
    assert pku["starsmie-1"] == pku["smie-2"] and pku["starsmie-2"] == pku["smie-3"]
    assert pku["star-46/5"] == pku["smie-1"]
    assert get_split("ntu120", "smie-1").unseen == (3, 18, 26, 38, 41, 60, 87, 99, 102, 110)


def test_unknown_names():
    with pytest.raises(ConfigError, match=r"'nope'.*synse-55/5"):
        get_split("ntu60", "nope")
    with pytest.raises(ConfigError, match="purls-22/5"):
        get_split("utd_mhad", "purls-55/5")  # an ntu60 alias is not a utd_mhad split
    with pytest.raises(ConfigError, match="unknown dataset 'ntu61'"):
        get_split("ntu61", "synse-55/5")
    with pytest.raises(ConfigError, match="unknown dataset"):
        list_splits("ntu61")
    # a split file that is not there is named as such, for a registered or a custom dataset
    for dataset in ("utd_mhad", "my_actions.npz"):
        with pytest.raises(ConfigError, match="split file sub/my_splt.yaml: no such file"):
            get_split(dataset, "sub/my_splt.yaml")


def test_bad_split_definitions():
    with pytest.raises(ConfigError, match="both seen and unseen"):
        ZeroShotSplit("x", "utd_mhad", 27, seen=range(0, 23), unseen=[22, 23, 24, 25, 26], source="t")
    with pytest.raises(ConfigError, match=r"outside 0\.\.26"):
        ZeroShotSplit("x", "utd_mhad", 27, seen=range(0, 22), unseen=[22, 23, 24, 25, 27], source="t")
    with pytest.raises(ConfigError, match="do not cover"):
        ZeroShotSplit("x", "utd_mhad", 27, seen=range(0, 20), unseen=[22, 23], source="t")
    with pytest.raises(ConfigError, match="duplicate"):
        ZeroShotSplit("x", "utd_mhad", 27, seen=range(0, 22), unseen=[22, 22, 23, 24, 25, 26], source="t")
    with pytest.raises(ConfigError, match="empty 'unseen'"):
        ZeroShotSplit("x", "utd_mhad", 27, seen=range(27), unseen=[], source="t")


# ---------------------------------------------------------------------- vs the published files
def test_purls_lists_equal_npy_files(data_root):
    need(data_root, "splits/purls")
    checked = 0
    for ds, folder in PURLS_DIRS.items():
        n = DATASETS[ds].num_classes
        for sp in list_splits(ds):
            if sp.kind != "benchmark" or not (sp.name.startswith("purls-") or sp.name in
                                              ("synse-55/5", "synse-48/12", "synse-110/10", "synse-96/24")):
                continue
            u = len(sp.unseen)
            assert list(sp.unseen) == _npy(data_root, f"splits/purls/{folder}/ru{u}.npy"), (ds, sp.name)
            assert list(sp.seen) == _npy(data_root, f"splits/purls/{folder}/rs{n - u}.npy"), (ds, sp.name)
            checked += 1
    assert checked == 13


def test_synse_repository_files(data_root):
    need(data_root, "splits/synse")
    assert list(get_split("ntu60", "synse-55/5").unseen) == _npy(data_root, "splits/synse/ru5.npy")
    orig = get_split("ntu60", "synse-orig-48/12")
    assert list(orig.unseen) == _npy(data_root, "splits/synse/ru12.npy")
    assert list(orig.seen) == _npy(data_root, "splits/synse/rs48.npy")
    assert list(get_split("ntu120", "synse-96/24").unseen) == _npy(data_root, "splits/synse/ru24.npy")
    for ds, name, u, s in [("ntu60", "synse-val-50/5", "rv5_0", "rs50_0"),
                           ("ntu60", "synse-val-36/12", "rv12_0", "rs36_0"),
                           ("ntu120", "synse-val-72/24", "rv24_0", "rs72_0")]:
        sp = get_split(ds, name)
        assert list(sp.unseen) == _npy(data_root, f"splits/synse/{u}.npy")
        assert list(sp.seen) == _npy(data_root, f"splits/synse/{s}.npy")
    # SynSE's 36/12 validation split uses a class the field's 48/12 holds out as unseen.
    assert 56 in get_split("ntu60", "synse-val-36/12").unseen and 56 in get_split("ntu60", "synse-48/12").unseen


def _reference(data_root, name):
    p = data_root.parent / "reference" / name
    if not p.is_file():
        pytest.skip(f"reference spec {p} not available")
    return p.read_text()


def _flora_key_to_split(key):
    ds = {"ntu60": "ntu60", "ntu120": "ntu120", "pku51": "pku_mmd1"}[key.split("_")[0]]
    m = re.fullmatch(r"\w+?_seen(\d+)_unseen(\d+)(?:_(sadave|starsmie)_split(\d))?", key)
    seen, unseen, proto, k = m.groups()
    if proto == "sadave":
        return ds, f"sadvae-{k}"
    if proto == "starsmie":
        return ds, f"starsmie-{k}"
    if ds == "pku_mmd1":
        return ds, f"star-{seen}/{unseen}"
    src = "synse" if (seen, unseen) in {("55", "5"), ("48", "12"), ("110", "10"), ("96", "24")} else "purls"
    return ds, f"{src}-{seen}/{unseen}"


def test_flora_spec_appendix_a(data_root):
    text = _reference(data_root, "flora-spec.md")
    appendix = text[text.index("# Appendix A"):text.index("# Appendix B")]
    seen_by_key = {}
    for block in appendix.split("\n## ")[1:]:
        key = re.search(r"split key `([^`]+)`", block)
        seen = re.search(r"- seen \(\d+\): \[([\d, ]+)\]", block)
        if key and seen:
            seen_by_key[key[1]] = [int(x) for x in seen[1].split(",")]
    unseen_by_key = {k: [int(x) for x in v.split(",")] for k, v in
                     re.findall(r"- `([a-z0-9_]+)` \(N=\d+\): unseen \[([\d, ]+)\]", appendix)}
    assert len(seen_by_key) >= 17 and len(unseen_by_key) == 9
    for key, seen in seen_by_key.items():
        ds, name = _flora_key_to_split(key)
        assert list(get_split(ds, name).seen) == seen, key
    for key, unseen in unseen_by_key.items():
        ds, name = _flora_key_to_split(key)
        assert list(get_split(ds, name).unseen) == sorted(unseen), key


def test_pgfa_smie_spec_table(data_root):
    text = _reference(data_root, "pgfa-smie-spec.md")
    section = text[text.index("### Unseen class lists"):text.index("## 2. Text side")]
    rows = re.findall(r"\| `?(split_\d|unseen_label_\d+)`? \| \[([\d,]+)\]", section)
    rows += re.findall(r"\| [\d/]+ `(unseen_label_\d+)` \| \[([\d,]+)\]", section)
    synse = {"unseen_label_5": ("ntu60", "synse-55/5"), "unseen_label_12": ("ntu60", "synse-48/12"),
             "unseen_label_10": ("ntu120", "synse-110/10"), "unseen_label_24": ("ntu120", "synse-96/24")}
    seen_keys = set()
    for key, ids in rows:
        ids = sorted(int(x) for x in ids.split(","))
        if key.startswith("split_"):
            k = int(key[6:])
            ds = ["ntu60", "ntu120", "pku_mmd1"][(k - 1) // 3]
            ds_name = (ds, f"smie-{(k - 1) % 3 + 1}")
        else:
            ds_name = synse[key]
        assert list(get_split(*ds_name).unseen) == ids, key
        seen_keys.add(key)
    assert len(seen_keys) == 13


# ---------------------------------------------------------------------- user files
def test_load_split_file_formats(tmp_path):
    np.save(tmp_path / "u.npy", np.array([4, 14, 17, 23, 24]))
    (tmp_path / "u.json").write_text(json.dumps([24, 4, 14, 17, 23]))
    (tmp_path / "u.yaml").write_text("dataset: utd_mhad\nname: mine\nunseen: [4, 14, 17, 23, 24]\n")
    (tmp_path / "u.txt").write_text("4, 14 17\n23 24\n")
    ref = get_split("utd_mhad", "purls-22/5")
    for f in ("u.npy", "u.json", "u.yaml", "u.txt"):
        sp = load_split_file(tmp_path / f, dataset="utd_mhad")
        assert (sp.seen, sp.unseen, sp.kind) == (ref.seen, ref.unseen, "user"), f
    assert load_split_file(tmp_path / "u.yaml").name == "mine"  # dataset from the file
    # a path works wherever a split name does
    assert get_split("utd_mhad", str(tmp_path / "u.npy")).unseen == ref.unseen
    # explicit seen: a subset of classes is allowed for user splits
    (tmp_path / "s.json").write_text(json.dumps({"num_classes": 12, "seen": [0, 1, 2, 3], "unseen": [5, 6]}))
    sp = load_split_file(tmp_path / "s.json")
    assert sp.seen == (0, 1, 2, 3) and sp.num_classes == 12 and sp.dataset == ""


def test_split_file_with_class_names(tmp_path):
    """Given the dataset's class names, a split file may name its classes (mixed with ids), and a
    custom dataset's class count comes from its names; an unknown name lists the valid ones."""
    names = ["wave", "clap", "jump", "sit down"]
    (tmp_path / "n.yaml").write_text("name: mine-2/2\nunseen: [sit down, 1]\n")
    sp = load_split_file(tmp_path / "n.yaml", dataset="my.npz", class_names=names)
    assert (sp.seen, sp.unseen, sp.num_classes, sp.name) == ((0, 2), (1, 3), 4, "mine-2/2")
    assert get_split("my.npz", str(tmp_path / "n.yaml"), class_names=names).unseen == (1, 3)
    (tmp_path / "s.json").write_text(json.dumps({"seen": ["wave"], "unseen": ["jump"]}))
    assert load_split_file(tmp_path / "s.json", class_names=names).seen == (0,)
    (tmp_path / "bad.yaml").write_text("unseen: [sit, clap]\n")
    with pytest.raises(DataError, match=r"bad\.yaml: key 'unseen': unknown class name\(s\) \['sit'\]; .*'sit down'"):
        load_split_file(tmp_path / "bad.yaml", class_names=names)
    # a built-in dataset: names resolve to its ids, as in `zeroskel splits utd_mhad --name FILE`
    utd = get_split("utd_mhad", "purls-22/5")
    from zeroskel.data.readers.small import UTD_MHAD_CLASSES
    (tmp_path / "u.yaml").write_text("unseen: [throw, tennis swing, push, sit to stand, stand to sit]\n")
    got = load_split_file(tmp_path / "u.yaml", dataset="utd_mhad", class_names=UTD_MHAD_CLASSES)
    assert got.unseen == utd.unseen
    # a .txt split holds ids: class names in one were int()'s bare "invalid literal" message
    (tmp_path / "names.txt").write_text("sit down\nclap\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"names\.txt: 'sit' is not a class id; .*for class names write a \.yaml"):
        load_split_file(tmp_path / "names.txt", class_names=names)
    (tmp_path / "ids.txt").write_text("\ufeff3, 1\n", encoding="utf-8")  # and a BOM is no error
    assert load_split_file(tmp_path / "ids.txt", class_names=names).unseen == (1, 3)


def test_load_split_file_errors(tmp_path):
    np.save(tmp_path / "f.npy", np.array([0.5, 2.0]))
    with pytest.raises(DataError, match=r"f\.npy.*integer"):
        load_split_file(tmp_path / "f.npy", dataset="utd_mhad")
    np.save(tmp_path / "big.npy", np.array([3, 27]))
    with pytest.raises(ConfigError, match=r"big\.npy.*\[27\] outside 0\.\.26"):
        load_split_file(tmp_path / "big.npy", dataset="utd_mhad")
    (tmp_path / "noset.json").write_text(json.dumps({"seen": [1]}))
    with pytest.raises(DataError, match=r"noset\.json.*'unseen'"):
        load_split_file(tmp_path / "noset.json", dataset="utd_mhad")
    (tmp_path / "bad.yaml").write_text("unseen: [1, 2\n")
    with pytest.raises(DataError, match=r"bad\.yaml: invalid YAML \(line 2, column 1: expected"):
        load_split_file(tmp_path / "bad.yaml", dataset="utd_mhad")
    (tmp_path / "str.json").write_text(json.dumps({"unseen": ["1", "2"]}))
    with pytest.raises(DataError, match="class name '1' given, but the dataset's class names are not known"):
        load_split_file(tmp_path / "str.json", dataset="utd_mhad")
    (tmp_path / "float.json").write_text(json.dumps({"unseen": [1.5]}))
    with pytest.raises(DataError, match="1.5 is neither a class id nor a class name"):
        load_split_file(tmp_path / "float.json", dataset="utd_mhad")
    with pytest.raises(ConfigError, match="number of classes unknown"):
        load_split_file(tmp_path / "big.npy")
    (tmp_path / "other.yaml").write_text("dataset: ntu60\nunseen: [1]\n")
    with pytest.raises(ConfigError, match="'ntu60'.*utd_mhad"):
        load_split_file(tmp_path / "other.yaml", dataset="utd_mhad")
    with pytest.raises(DataError, match="not found"):
        load_split_file(tmp_path / "missing.npy", dataset="utd_mhad")


# ---------------------------------------------------------------------- dataset checks
def _toy(labels, is_train, num_classes=27, name="utd_mhad"):
    n = len(labels)
    return SkeletonDataset(
        name=name, layout="kinect_v1", class_names=[f"c{i}" for i in range(num_classes)],
        data=np.zeros((n, 3, 4, 20, 1), np.float32), lengths=np.full(n, 4), labels=np.asarray(labels),
        partitions={"xsub": np.asarray(is_train)})


def test_check_on_toy_datasets():
    sp = get_split("utd_mhad", "purls-22/5")  # unseen 4, 14, 17, 23, 24
    labels = np.tile(np.arange(27), 2)
    ok = _toy(labels, np.arange(54) < 27)
    sp.check(ok, "xsub")
    sp.check(ok)
    # unseen class 14 absent from the test part
    no_test = _toy(labels, (np.arange(54) < 27) | (labels == 14))
    with pytest.raises(DataError, match=r"unseen classes \[14\].*test part of partition 'xsub'"):
        sp.check(no_test, "xsub")
    # seen class 3 absent from the train part
    no_train = _toy(labels, (np.arange(54) < 27) & (labels != 3))
    with pytest.raises(DataError, match=r"seen classes \[3\].*train part"):
        sp.check(no_train, "xsub")
    with pytest.raises(ConfigError, match=r"27 classes, dataset .toy. has 10; class ids \[10, "):
        sp.check(_toy(np.arange(10), np.ones(10, bool), num_classes=10, name="toy"))
    with pytest.raises(ConfigError, match="not of dataset 'nw_ucla'"):
        sp.check(_toy(labels, np.arange(54) < 27, name="nw_ucla"))
    with pytest.raises(ConfigError, match="partition"):
        sp.check(ok, "xview")


def test_purls_splits_fit_real_utd_mhad(data_root):
    from zeroskel.data.readers.small import read_utd_mhad

    ds = read_utd_mhad(need(data_root, "utd_mhad"), progress=False)
    for sp in list_splits("utd_mhad"):
        sp.check(ds, "xsub")
    # Sample counts of the published protocol (features/README: 351 train / 80 ZSL for ru5).
    sp = get_split("utd_mhad", "purls-22/5")
    train = ds.partition("xsub", "train")
    test = ds.partition("xsub", "test")
    assert np.isin(ds.labels[train], sp.seen_array).sum() == 351
    assert np.isin(ds.labels[test], sp.unseen_array).sum() == 80


# ---------------------------------------------------------------------- model selection
def test_validation_split_deterministic():
    sp = get_split("ntu60", "synse-55/5")
    a, b = sp.validation_split(seed=3), sp.validation_split(seed=3)
    assert a == b and a.kind == "validation" and a.parent == "synse-55/5"
    assert (len(a.seen), len(a.unseen)) == (50, 5)
    assert set(a.unseen) <= set(sp.seen) and set(a.seen) | set(a.unseen) == set(sp.seen)
    assert set(sp.unseen).isdisjoint(a.seen + a.unseen)
    assert len({sp.validation_split(seed=s).unseen for s in range(5)}) > 1
    assert len(get_split("utd_mhad", "purls-14/13").validation_split().unseen) == 7
    assert len(sp.validation_split(num_unseen=20).unseen) == 20
    with pytest.raises(ConfigError, match="num_unseen=55"):
        sp.validation_split(num_unseen=55)


def test_holdout_seen_stratified():
    sp = get_split("nw_ucla", "purls-8/2")  # unseen 1, 4
    labels = np.repeat(np.arange(10), 10)
    labels[-1] = 1  # class 9 has 9 samples
    labels = np.append(labels, 0)
    train = np.arange(0, len(labels), 1)
    fit, val = sp.holdout_seen(labels, fraction=0.2, seed=0, index=train)
    assert np.intersect1d(fit, val).size == 0
    assert set(np.unique(labels[np.concatenate([fit, val])])) == set(sp.seen)
    counts = np.bincount(labels[val], minlength=10)
    assert counts[0] == round(0.2 * 11) and counts[2] == 2 and counts[9] == round(0.2 * 9)
    assert counts[1] == 0 and counts[4] == 0
    fit2, val2 = sp.holdout_seen(labels, fraction=0.2, seed=0, index=train)
    assert np.array_equal(val, val2) and np.array_equal(fit, fit2)
    assert not np.array_equal(val, sp.holdout_seen(labels, fraction=0.2, seed=1)[1])
    # a class with a single sample stays entirely in the fit part
    f, v = stratified_holdout(np.array([0, 1, 1, 1]), [0, 1], 0.5)
    assert 0 in f and len(v) == 2 and set(v) <= {1, 2, 3}  # round(1.5) = 2 of class 1
    # index maps back to original sample ids
    f, v = stratified_holdout(np.array([0, 0, 0, 0]), [0], 0.5, index=np.array([10, 11, 12, 13]))
    assert set(f) | set(v) == {10, 11, 12, 13} and len(v) == 2
    with pytest.raises(ConfigError, match="fraction"):
        stratified_holdout(labels, [0], 1.0)
