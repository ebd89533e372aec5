"""The CLI end to end on real data: what a user types and reads."""
import json

import pytest

from conftest import need
from zeroskel.cli import main


def test_inspect_utd_mhad(data_root, capsys, tmp_path):
    need(data_root, "utd_mhad")
    png = tmp_path / "frame.png"
    assert main(["inspect", "utd_mhad", "--data-root", str(data_root), "--png", str(png), "--sample", "5"]) == 0
    out = capsys.readouterr().out
    assert "utd_mhad: 861 samples, 27 classes" in out
    assert "partition xsub: train 431, test 430" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert main(["inspect", "utd_mhad", "--data-root", str(data_root), "--png", str(png)]) == 2
    assert f"--png {png} exists" in capsys.readouterr().err
    assert main(["inspect", "utd_mhad", "--data-root", str(data_root), "--png", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["inspect", "utd_mhad", "--data-root", str(data_root), "--png", str(png), "--force"]) == 0



def test_prepare_and_inspect_take_a_pipeline_file(data_root, capsys, tmp_path, monkeypatch):
    need(data_root, "utd_mhad")
    monkeypatch.setenv("ZEROSKEL_CACHE", str(tmp_path / "cache"))
    pipe = tmp_path / "mine.yaml"
    pipe.write_text("data:\n  pipeline:\n    - {name: center, joint: torso_top, mode: per_frame}\n"
                    "    - {name: resize, frames: 12}\n")
    assert main(["prepare", "utd_mhad", "--pipeline", str(pipe), "--data-root", str(data_root)]) == 0
    assert "array (861, 3, 12, 20, 1)" in capsys.readouterr().out
    assert main(["inspect", "utd_mhad", "--pipeline", str(pipe), "--data-root", str(data_root)]) == 0
    assert "array (861, 3, 12, 20, 1)" in capsys.readouterr().out
    (tmp_path / "empty.yaml").write_text("frames: 12\n")
    for name, msg in (("empty.yaml", "no 'pipeline'"), ("absent.yaml", "no such file")):
        assert main(["prepare", "utd_mhad", "--pipeline", str(tmp_path / name), "--data-root", str(data_root)]) == 2
        assert msg in capsys.readouterr().err

def test_inspect_nw_ucla_json(data_root, capsys):
    need(data_root, "nw_ucla")
    assert main(["inspect", "nw_ucla", "--data-root", str(data_root), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["samples"] == 1484 and s["classes"] == 10
    assert s["partitions"]["xview"]["train"] == 1020 and s["partitions"]["xview"]["test"] == 464
    assert sum(s["partitions"]["xview"]["test_per_class"]) == 464


def test_missing_data_root_is_one_clear_line(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("ZEROSKEL_DATA", raising=False)
    assert main(["inspect", "utd_mhad"]) == 2
    err = capsys.readouterr().err
    assert "--data-root" in err and "ZEROSKEL_DATA" in err and "Traceback" not in err
    assert main(["inspect", "utd_mhad", "--data-root", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err



def test_filesystem_errors_are_one_line(data_root, capsys, tmp_path):
    need(data_root, "utd_mhad")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["inspect", "utd_mhad", "--data-root", str(data_root), "--png", str(blocker / "f.png")]) == 2
    assert f"a file is in the way of a folder: {blocker}" in capsys.readouterr().err  # was a traceback
    assert main(["train", "--dataset", "utd_mhad", "--split", "purls-22/5", "--data-root", str(data_root),
                 "--runs-dir", str(blocker / "runs")]) == 2
    assert f"{blocker} is a file, not a folder" in capsys.readouterr().err

def test_unknown_dataset_lists_valid(capsys, tmp_path):
    assert main(["inspect", "ntu61", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'ntu61'" in err and "utd_mhad" in err


def test_absent_dataset_says_where_to_get_it(capsys, tmp_path):
    assert main(["inspect", "ntu60", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "ntu60" in err and "rose1.ntu.edu.sg" in err



def test_datasets_names_a_missing_data_root(capsys, tmp_path):
    assert main(["datasets", "--data-root", str(tmp_path / "nope")]) == 0
    out = capsys.readouterr().out
    assert "does not exist" in out and f"data root: {tmp_path / 'nope'} (missing)" in out

def test_datasets_lists_presence(data_root, capsys):
    need(data_root, "utd_mhad")  # a data root without them (e.g. NTU only) skips, as other tests do
    need(data_root, "nw_ucla")
    assert main(["datasets", "--data-root", str(data_root), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["utd_mhad"]["present"] and rows["nw_ucla"]["present"]
    assert set(rows) >= {"ntu60", "ntu120", "pku_mmd1", "pku_mmd2"}


def test_eval_features_devise_on_real_file(data_root, capsys, tmp_path):
    feats = need(data_root, "features/utd_mhad_ru5.npz")
    bank = need(data_root, "features/utd_mhad_text_mpnet_L5.npy")
    out = tmp_path / "res.json"
    args = ["eval-features", "--method", "devise", "--features", str(feats), "--text-bank", str(bank),
            "--set", "epochs=5", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())
    assert f"ZSL top-1 {res['zsl']:.2f}" in printed
    assert 0 <= res["zsl"] <= 100 and {"S", "U", "H"} <= set(res["gzsl"]["stacking"])
    assert main(args) == 2  # never overwrites a result
    assert f"--out {out} exists" in capsys.readouterr().err
    import torch
    before = torch.get_num_threads()
    try:  # --threads is applied and recorded
        assert main(args[:-1] + [str(tmp_path / "one.json"), "--threads", "1"]) == 0
        assert json.loads((tmp_path / "one.json").read_text())["torch_threads"] == 1
    finally:
        torch.set_num_threads(before)
    # a --set key that is no constructor argument is one line naming it, not a TypeError
    assert main(args[:-2] + ["--set", "train.threads=1"]) == 2
    assert "--set train.threads=1: devise has no option 'train'; valid: hidden" in capsys.readouterr().err


def test_eval_features_says_why_calibration_is_missing(data_root, capsys):
    # --low-shot 0.1 keeps one sample per UTD-MHAD class: nothing is left to hold out, so only the
    # uncalibrated GZSL row exists; the output used to drop the calibrated rows without a word
    feats = need(data_root, "features/utd_mhad_ru5.npz")
    bank = need(data_root, "features/utd_mhad_text_mpnet_L5.npy")
    assert main(["eval-features", "--method", "devise", "--features", str(feats), "--text-bank", str(bank),
                 "--set", "epochs=1", "--low-shot", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "GZSL uncalibrated" in out and "GZSL stacking" not in out
    assert "GZSL calibrated: not available (held-out data has no samples of seen" in out


def test_eval_features_checks_files_against_a_registered_dataset(tmp_path, capsys):
    # NW-UCLA features with UTD-MHAD's 27-class bank used to run silently (labels 0-9 index the wrong texts)
    import numpy as np

    rng = np.random.default_rng(0)
    tr = np.repeat(np.arange(7), 3); z = np.repeat([7, 8, 9], 2)
    np.savez(tmp_path / "f.npz", train_data=rng.random((21, 4)), train_label=tr, zsl_data=rng.random((6, 4)),
             zsl_label=z, gzsl_data=rng.random((13, 4)), gzsl_label=np.concatenate([np.arange(7), z]))
    np.save(tmp_path / "bank27.npy", rng.random((27, 2, 5)).astype(np.float32))
    base = ["eval-features", "--method", "devise", "--features", str(tmp_path / "f.npz"), "--set", "epochs=1"]
    assert main(base + ["--text-bank", str(tmp_path / "bank27.npy"), "--dataset", "nw_ucla"]) == 2
    assert "bank27.npy: texts for 27 classes, but --dataset nw_ucla has 10; is it another dataset's" \
        in capsys.readouterr().err
    np.savez(tmp_path / "g.npz", **{**dict(np.load(tmp_path / "f.npz")), "zsl_label": z + 10,
                                    "gzsl_label": np.concatenate([np.arange(7), z + 10])})
    assert main(["eval-features", "--method", "devise", "--features", str(tmp_path / "g.npz"), "--text-bank",
                 str(tmp_path / "bank27.npy"), "--dataset", "nw_ucla"]) == 2
    assert "g.npz: class ids up to 19, but --dataset nw_ucla has 10 classes" in capsys.readouterr().err


def _toy_feature_files(tmp_path, n_seen=6, n_unseen=3, per=6, d=8, seed=0):
    """A Flora-layout feature file (original class ids) and a (C, L, D) token bank."""
    import numpy as np

    rng = np.random.default_rng(seed)
    c = n_seen + n_unseen
    tr = np.repeat(np.arange(n_seen), per); z = np.repeat(np.arange(n_seen, c), 3)
    g = np.concatenate([np.repeat(np.arange(n_seen), 2), z])
    np.savez(tmp_path / "toy.npz", train_data=rng.random((len(tr), d)), train_label=tr,
             zsl_data=rng.random((len(z), d)), zsl_label=z, gzsl_data=rng.random((len(g), d)), gzsl_label=g)
    np.save(tmp_path / "toy_bank.npy", rng.random((c, 3, 6)).astype(np.float32))
    return tmp_path / "toy.npz", tmp_path / "toy_bank.npy"


def test_eval_features_result_records_the_class_texts(tmp_path, capsys):
    # the --out JSON named the features, dataset, preset and --set items but not the texts, so two
    # results of one file with other --text-source files could not be told apart
    import numpy as np
    from zeroskel.data.readers.custom import write_custom

    feats, bank = _toy_feature_files(tmp_path)
    names = [f"action {i}" for i in range(9)]
    write_custom(tmp_path / "mine.npz", [np.zeros((3, 25, 3))] * 9, list(range(9)), names, "ntu25")
    base = ["eval-features", "--method", "devise", "--features", str(feats), "--set", "epochs=1"]
    assert main(base + ["--text-bank", str(bank), "--out", str(tmp_path / "a.json")]) == 0
    assert json.loads((tmp_path / "a.json").read_text())["text"] == {"bank": str(bank)}
    assert main(base + ["--dataset", str(tmp_path / "mine.npz"), "--text-source", "a person doing {name}",
                        "--out", str(tmp_path / "b.json")]) == 0
    assert json.loads((tmp_path / "b.json").read_text())["text"] == \
        {"source": "a person doing {name}", "model": "all-MiniLM-L6-v2", "max_length": 16}


def test_eval_features_prints_ref_style(tmp_path, capsys):
    # --ref-style numbers were only written to --out: without it the flag's result was lost, and a
    # method without a budget ignored the flag without a word
    feats, bank = _toy_feature_files(tmp_path)
    tiny = ["--set", "train.align_iters=2", "--set", "train.flow_iters=4", "--set", "train.eval_every=2",
            "--set", "model.latent_dim=8", "--set", "model.heads=2", "--set", "train.batch_size=8"]
    assert main(["eval-features", "--method", "flora", "--features", str(feats), "--text-bank", str(bank),
                 "--ref-style", *tiny]) == 0
    out = capsys.readouterr().out
    assert "reference-style best of 3 test evaluations (NOT a valid estimate): ZSL " in out
    assert main(["eval-features", "--method", "devise", "--features", str(feats), "--text-bank", str(bank),
                 "--ref-style", "--set", "epochs=1"]) == 0
    assert "--ref-style: devise has no training budget" in capsys.readouterr().out


def test_eval_features_text_bank_and_text_source_exclude_each_other(tmp_path, capsys):
    # both were accepted and --text-source silently ignored
    feats, bank = _toy_feature_files(tmp_path)
    assert main(["eval-features", "--method", "devise", "--features", str(feats), "--text-bank", str(bank),
                 "--dataset", "nw_ucla", "--text-source", "name"]) == 2
    assert "give --text-bank or --text-source, not both" in capsys.readouterr().err


def test_eval_features_unknown_method_lists_valid(data_root, capsys):
    feats = need(data_root, "features/utd_mhad_ru5.npz")
    assert main(["eval-features", "--method", "flor", "--features", str(feats), "--text-bank", str(feats)]) == 2
    err = capsys.readouterr().err
    assert "unknown method 'flor'" in err and "flora" in err


def test_eval_features_preset_with_dataset_blocks_needs_the_dataset(data_root, capsys):
    """flora --preset cpu tunes UTD-MHAD differently: without --dataset it would silently use the
    generic setting, so the CLI says which flag is missing before any fit."""
    feats = need(data_root, "features/utd_mhad_ru5.npz")
    bank = need(data_root, "features/utd_mhad_text_mpnet_L5.npy")
    assert main(["eval-features", "--method", "flora", "--preset", "cpu", "--features", str(feats),
                 "--text-bank", str(bank)]) == 2
    err = capsys.readouterr().err
    assert "flora/cpu.yaml has settings for the datasets utd_mhad" in err and "--dataset" in err


def test_features_check_names_missing_key(tmp_path, capsys):
    import numpy as np

    bad = tmp_path / "bad.npz"
    np.savez(bad, train_data=np.zeros((4, 8)), train_label=np.zeros(4, int))
    assert main(["features", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.npz" in err and "zsl_data" in err


def test_eval_features_bank_must_be_a_text_bank(data_root, capsys):
    # a feature file given as the text bank: named, with the keys it has
    feats = need(data_root, "features/utd_mhad_ru5.npz")
    assert main(["eval-features", "--method", "devise", "--features", str(feats), "--text-bank", str(feats)]) == 2
    err = capsys.readouterr().err
    assert "utd_mhad_ru5.npz: an .npz bank needs a 'sentence' (C, D) array" in err
    assert "keys present: gzsl_data, gzsl_label, train_data" in err


def test_eval_features_reads_a_text_embed_npz(data_root, capsys, tmp_path):
    """`zeroskel text embed --out` output is a valid --text-bank (it was refused as an archive)."""
    import numpy as np

    feats = need(data_root, "features/nw_ucla_ru5.npz")
    bank = np.load(need(data_root, "features/nw_ucla_text_mpnet_L5.npy"))
    np.savez(tmp_path / "emb.npz", sentence=bank[:, -1], tokens=bank)  # the layout text embed writes
    assert main(["eval-features", "--method", "devise", "--features", str(feats), "--text-bank",
                 str(tmp_path / "emb.npz"), "--set", "epochs=1", "--out", str(tmp_path / "r.json")]) == 0
    assert "ZSL top-1" in capsys.readouterr().out


@pytest.mark.slow
def test_pretrain_extract_eval_features_chain(data_root, capsys, tmp_path):
    """The two-stage pipeline a user runs: pretrain -> extract -> evaluate a feature method."""
    need(data_root, "utd_mhad")
    runs = tmp_path / "runs"
    assert main(["pretrain", "--dataset", "utd_mhad", "--split", "purls-22/5", "--data-root", str(data_root),
                 "--set", "train.epochs=1", "--runs-dir", str(runs), "--device", "cpu"]) == 0
    (run,) = runs.iterdir()
    feats = tmp_path / "f.npz"
    assert main(["extract", str(run), "--out", str(feats), "--data-root", str(data_root), "--device", "cpu"]) == 0
    assert main(["extract", str(run), "--out", str(feats), "--data-root", str(data_root)]) == 2  # no overwrite
    capsys.readouterr()
    assert main(["eval-features", "--method", "devise", "--features", str(feats), "--dataset", "utd_mhad",
                 "--text-source", "name", "--data-root", str(data_root), "--set", "epochs=2"]) == 0
    assert "ZSL top-1" in capsys.readouterr().out



def test_train_takes_seed_and_device_from_a_config_file_unless_given(data_root, tmp_path):
    """--seed and --device default to the config's, so a --config file's own values apply."""
    import yaml

    need(data_root, "utd_mhad")
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(yaml.safe_dump({
        "seed": 7, "device": "cpu", "train": {"epochs": 1, "batch_size": 16, "warmup_epochs": 0, "threads": 1},
        "data": {"limit_per_class": 4}, "validation": {"mode": "none"}, "alignment": {"enabled": False},
        "model": {"encoder": "stgcn", "args": {"channels": [8, 8, 16], "strides": [1, 2, 2]}, "input_frames": None},
        "text": {"source": "name", "segment_sources": None}}))
    common = ["train", "--dataset", "utd_mhad", "--split", "purls-22/5", "--config", str(cfg),
              "--data-root", str(data_root), "--runs-dir", str(tmp_path / "runs")]
    assert main(common) == 0
    assert main(common + ["--seed", "3"]) == 0
    names = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert names == ["pgfa-utd_mhad-purls-22_5-seed3", "pgfa-utd_mhad-purls-22_5-seed7"]
    saved = yaml.safe_load((tmp_path / "runs" / names[1] / "config.yaml").read_text())
    assert (saved["seed"], saved["device"]) == (7, "cpu")

def test_eval_features_low_shot_one_per_class_reports_no_calibration(data_root, capsys, tmp_path):
    """With one seen sample per class nothing can be held out: ZSL is reported, GZSL
    calibration is declared unavailable (never chosen on the test set)."""
    feats = need(data_root, "features/utd_mhad_ru5.npz")
    bank = need(data_root, "features/utd_mhad_text_mpnet_L5.npy")
    out = tmp_path / "ls.json"
    assert main(["eval-features", "--method", "devise", "--features", str(feats), "--text-bank", str(bank),
                 "--low-shot", "0.1", "--set", "epochs=2", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["data"]["n_train"] == 22  # 1 per seen class
    assert "stacking" not in res["gzsl"] and "uncalibrated" in res["gzsl"]
    assert "test set" in res["selection"]["calibration_unavailable"]


@pytest.mark.parametrize("value", ["0", "1.5", "-0.1", "nan", "inf"])
def test_eval_features_bad_low_shot_names_the_flag(tmp_path, capsys, value):
    """A bad --low-shot said 'low_shot: fraction must be in (0, 1]' after the feature file was
    read; it names the flag now, before any file is opened (this one does not exist)."""
    assert main(["eval-features", "--method", "devise", "--features", str(tmp_path / "none.npz"),
                 "--text-bank", str(tmp_path / "none.npy"), f"--low-shot={value}"]) == 2
    err = capsys.readouterr().err
    assert "--low-shot must be a fraction in (0, 1]" in err and "none.npz" not in err


def test_texts_of_a_custom_dataset(capsys, tmp_path):
    import numpy as np
    from zeroskel.data.readers.custom import write_custom

    path = tmp_path / "mine.npz"
    write_custom(path, [np.zeros((4, 25, 3), np.float32)] * 2, [0, 1], ["wave hand", "clap"], "ntu25")
    assert main(["texts", str(path)]) == 0
    assert capsys.readouterr().out.split("\n")[0] == "name"
    assert main(["texts", str(path), "--source", "a person doing {name}"]) == 0
    assert "1  a person doing clap" in capsys.readouterr().out



def test_a_dataset_without_splits_or_texts_says_so(capsys):
    assert main(["splits", "pku_mmd2"]) == 2
    assert "pku_mmd2 has no published zero-shot splits; train with --split FILE" in capsys.readouterr().err
    assert main(["texts", "pku_mmd2", "--source", "name"]) == 2
    assert "pku_mmd2 has no registered class texts; set text.source to a file" in capsys.readouterr().err
    assert main(["texts", "pku_mmd3", "--source", "name"]) == 2
    assert "unknown dataset with class texts 'pku_mmd3'" in capsys.readouterr().err

def test_splits_of_a_custom_dataset(capsys, tmp_path):
    """A custom dataset has no published splits (the error says what to do instead); a split file
    of its class names is shown resolved to ids."""
    import numpy as np
    from zeroskel.data.readers.custom import write_custom

    path = tmp_path / "mine.npz"
    write_custom(path, [np.zeros((4, 25, 3), np.float32)] * 3, [0, 1, 2], ["wave hand", "clap", "jump"], "ntu25")
    assert main(["splits", str(path)]) == 2
    assert "custom dataset: it has no published splits" in capsys.readouterr().err
    split = tmp_path / "s.yaml"
    split.write_text("name: mine-2/1\nunseen: [jump]\n")
    assert main(["splits", str(path), "--name", str(split)]) == 0
    assert "unseen: 2 jump" in capsys.readouterr().out
    split.write_text("unseen: [jumping]\n")
    assert main(["splits", str(path), "--name", str(split)]) == 2
    assert "unknown class name(s) ['jumping']" in capsys.readouterr().err


def test_text_embed_writes_npz_once(capsys, tmp_path):
    """`zeroskel text embed --out NAME` writes NAME.npz (numpy's suffix rule) and never replaces an
    existing file without --force; the array is the class texts' unit sentence embeddings."""
    import numpy as np
    from zeroskel.data.readers.custom import write_custom

    path = tmp_path / "mine.npz"
    write_custom(path, [np.zeros((4, 25, 3), np.float32)] * 2, [0, 1], ["wave hand", "clap"], "ntu25")
    args = ["text", "embed", "--dataset", str(path), "--source", "name", "--out", str(tmp_path / "emb")]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["saved"] == str(tmp_path / "emb.npz")
    emb = np.load(tmp_path / "emb.npz")["sentence"]
    assert emb.shape == (2, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert main(args) == 2
    assert "emb.npz exists" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0


def test_inspect_negative_frame_is_a_flag_error(tmp_path, capsys):
    # --frame -5 ended in a ValueError traceback from the renderer
    import numpy as np
    from zeroskel.data.readers.custom import write_custom
    rng = np.random.default_rng(0)
    path = write_custom(tmp_path / "mine.npz", [rng.normal(size=(9, 25, 3))], [0], ["x"], "ntu25")
    png = tmp_path / "f.png"
    assert main(["inspect", str(path), "--png", str(png), "--frame", "-5"]) == 2
    assert "--frame -5: a frame index is >= 0" in capsys.readouterr().err
    assert not png.exists()
    assert main(["inspect", str(path), "--png", str(png), "--frame", "3"]) == 0


def test_train_report_shows_gzsl(tmp_path, capsys):
    """The end-of-run printout of train / resume showed scalar metrics only, so S / U / H never
    reached the screen; it now shows each available GZSL block's S, U, H and gamma."""
    from zeroskel.cli import _report_run

    (tmp_path / "metrics.json").write_text(json.dumps({
        "zsl_top1": 40.0, "zsl_confusion": [[1]], "gzsl_uncalibrated": {"S": 50.0, "U": 10.0, "H": 16.7, "gamma": 0.0},
        "gzsl_calibrated": {"available": False, "reason": "no validation"}}))
    assert _report_run(tmp_path) == 0
    out = capsys.readouterr().out
    shown = json.loads(out.split("\n", 1)[1])
    assert out.startswith(f"run directory: {tmp_path}")
    assert shown == {"zsl_top1": 40.0, "gzsl_uncalibrated": {"S": 50.0, "U": 10.0, "H": 16.7, "gamma": 0.0}}


@pytest.mark.parametrize("argv, said", [
    (["eval-features", "--method", "flora", "--config", "cpu", "--features", "f.npz"],
     "zeroskel eval-features: error: unrecognized arguments: --config cpu (did you mean --preset?)"),
    (["benchmark", "--out", "b", "--preset", "cpu"],
     "zeroskel benchmark: error: unrecognized arguments: --preset cpu (did you mean --config?)"),
    (["train", "--dataset", "utd_mhad", "--split", "purls-22/5", "--epochs", "3"],
     "zeroskel train: error: unrecognized arguments: --epochs 3 (config keys are given as --set KEY=VALUE"),
    (["datasets", "--jsn"], "zeroskel datasets: error: unrecognized arguments: --jsn (did you mean --json?)"),
])
def test_unknown_flag_is_reported_by_its_command(argv, said, capsys):
    """A flag the command lacks used to be reported by the top-level parser ('zeroskel: error',
    with the list of all commands as usage); now the command reports it, with its own usage and
    a hint (README's benchmark --config vs eval-features --preset)."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert said in err and f"usage: zeroskel {argv[0]} " in err and "{datasets," not in err


def test_texts_lists_the_forms_beyond_the_named_sources(capsys):
    """`zeroskel texts utd_mhad` lists its sources and, as README says it does, the combinations,
    templates and files built on them (it used to list the names only, for a built-in dataset)."""
    assert main(["texts", "utd_mhad"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["name", "purls-label", "purls-global"]
    assert any("name+purls-global" in x for x in lines) and "<path to .txt/.csv/.json>" in lines
    assert any(x.startswith("<template with {source} fields") for x in lines)


def _layout_fixture(tmp_path, layout):
    """A small feature split written in one published layout; returns (path, canonical arrays)."""
    import numpy as np

    rng = np.random.default_rng(3)
    arr = {"train_data": rng.random((8, 5)), "train_label": np.array([0, 0, 1, 1, 2, 2, 5, 5]),
           "zsl_data": rng.random((4, 5)), "zsl_label": np.array([3, 3, 4, 4]),
           "gzsl_data": rng.random((7, 5)), "gzsl_label": np.array([0, 1, 2, 5, 3, 4, 4])}
    synse = {"train_data": "train", "train_label": "train_label", "zsl_data": "ztest", "zsl_label": "z_label",
             "gzsl_data": "gtest", "gzsl_label": "g_label"}
    if layout == "flora":  # Flora / zeroskel extract: six keys in one .npz, original class ids
        path = tmp_path / "flora.npz"
        np.savez(path, **arr)
    elif layout == "flora_masked":  # zeroskel extract --masked adds train_masked_data
        arr["train_masked_data"] = rng.random((8, 5))
        path = tmp_path / "masked.npz"
        np.savez(path, **arr)
    elif layout == "synse_dir":  # SynSE / SA-DVAE release: a folder of .npy files
        path = tmp_path / "shift_5_r"
        path.mkdir()
        for k, name in synse.items():
            np.save(path / f"{name}.npy", arr[k])
    elif layout == "synse_npz":  # the same names in one archive
        path = tmp_path / "synse.npz"
        np.savez(path, **{synse[k]: v for k, v in arr.items()})
    else:  # one-hot labels (dumps of SynSE's h5 splits)
        path = tmp_path / "onehot.npz"
        np.savez(path, **{k: (np.eye(6, dtype=np.float32)[v] if k.endswith("label") else v) for k, v in arr.items()})
    return path, arr


@pytest.mark.parametrize("layout", ["flora", "flora_masked", "synse_dir", "synse_npz", "one_hot"])
def test_features_convert_round_trips_each_layout(tmp_path, capsys, layout):
    import numpy as np

    src, arr = _layout_fixture(tmp_path, layout)
    dest = tmp_path / "out" / "flora.npz"
    assert main(["features", "check", str(src)]) == 0
    before = json.loads(capsys.readouterr().out)
    assert before["seen"] == [0, 1, 2, 5] and before["unseen"] == [3, 4] and before["num_classes"] == 6
    assert main(["features", "convert", str(src), str(dest)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {dest}\n")
    with np.load(dest) as z:
        assert sorted(z.files) == sorted(arr)
        for k, v in arr.items():  # the values, as float32 features and int64 class ids
            assert z[k].dtype == (np.int64 if k.endswith("label") else np.float32), k
            np.testing.assert_array_equal(z[k], v.astype(z[k].dtype), err_msg=k)
    assert main(["features", "check", str(dest)]) == 0
    after = json.loads(capsys.readouterr().out)
    assert {k: v for k, v in after.items() if k != "source"} == {k: v for k, v in before.items() if k != "source"}
    # an existing destination is refused (convert has no --force)
    assert main(["features", "convert", str(dest), str(dest)]) == 2
    assert "exists" in capsys.readouterr().err
