"""Benchmark runner: job plans, resumable runs on real data, settings that cannot be mixed."""
from __future__ import annotations

import json

import pytest

from conftest import need
from zeroskel.cli import main
from zeroskel.engine.benchmark import PUBLISHED, SUITES, Job, plan, run_benchmark, summarize
from zeroskel.errors import ConfigError


def test_plan_is_seed_major_and_filtered():
    jobs = plan("purls-small", [1, 2])
    assert len(jobs) == 10 and jobs[0] == Job("utd_mhad", "purls-22/5", 1) and jobs[5].seed == 2
    assert [j.seed for j in jobs[:5]] == [1] * 5
    only = plan("purls-small", [3], only=["nw_ucla:purls-5/5"])
    assert only == [Job("nw_ucla", "purls-5/5", 3)]
    assert Job("nw_ucla", "purls-5/5", 3).record("out").name == "nw_ucla-purls-5_5-seed3.json"
    # every published number belongs to a pair of its suite
    for suite, (_, numbers) in PUBLISHED.items():
        assert set(numbers) <= set(SUITES[suite])


def test_plan_errors_name_the_bad_value():
    with pytest.raises(ConfigError, match="unknown benchmark suite 'purls'.*purls-small"):
        plan("purls", [1])
    with pytest.raises(ConfigError, match="--only 'utd_mhad:purls-5/5' is not in suite 'purls-small'"):
        plan("purls-small", [1], only=["utd_mhad:purls-5/5"])
    with pytest.raises(ConfigError, match="must not repeat"):
        plan("purls-small", [1, 1])
    with pytest.raises(ConfigError, match="non-empty list of integers"):
        plan("purls-small", [])


def test_every_suite_split_exists():
    from zeroskel.data.splits import get_split
    for pairs in SUITES.values():
        for ds, sp in pairs:
            assert get_split(ds, sp).unseen_array.size > 0


def test_benchmark_runs_resumes_and_refuses_other_settings(data_root, tmp_path, capsys):
    need(data_root, "utd_mhad")
    out = tmp_path / "bench"
    quick = ["train.epochs=1", "validation.mode=none", "train.threads=1"]
    lines = []
    written = run_benchmark("purls-small", [1], out, only=["utd_mhad:purls-22/5"], overrides=quick,
                            data_root=data_root, device="cpu", log=lines.append)
    assert [p.name for p in written] == ["utd_mhad-purls-22_5-seed1.json"]
    rec = json.loads(written[0].read_text())
    metrics = json.loads((tmp_path / "bench" / "runs" / "pgfa-utd_mhad-purls-22_5-seed1" / "metrics.json").read_text())
    assert rec["zsl_top1"] == metrics["zsl_top1"] and rec["test_samples"] == 80
    # a second call finds the job done: no new run directory, nothing written
    assert run_benchmark("purls-small", [1], out, only=["utd_mhad:purls-22/5"], overrides=quick,
                         data_root=data_root, device="cpu", log=lines.append) == []
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["pgfa-utd_mhad-purls-22_5-seed1"]
    table = summarize(out)
    assert "| utd_mhad | purls-22/5 | 57.50 | " in table and f"{rec['zsl_top1']:.2f} (1 seed)" in table
    assert "| nw_ucla | purls-5/5 | 49.47 | (not run) |" in table
    # other settings in the same folder are refused before anything trains
    with pytest.raises(ConfigError, match="other settings \\(overrides"):
        run_benchmark("purls-small", [2], out, only=["utd_mhad:purls-22/5"], overrides=quick[:1],
                      data_root=data_root, device="cpu", log=lines.append)
    # and so is another torch thread count (it moves single runs; a table would average both)
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(before + 1)
    try:
        with pytest.raises(ConfigError, match="other settings \\(torch_threads"):
            run_benchmark("purls-small", [2], out, only=["utd_mhad:purls-22/5"], overrides=quick,
                          data_root=data_root, device="cpu", log=lines.append)
    finally:
        torch.set_num_threads(before)
    # a job another worker holds is left alone, and said so
    Job("utd_mhad", "purls-22/5", 2).record(out).with_suffix(".lock").write_text("1\n")
    assert run_benchmark("purls-small", [1, 2], out, only=["utd_mhad:purls-22/5"], overrides=quick,
                         data_root=data_root, device="cpu", log=lines.append) == []
    assert any("seed 2: utd_mhad-purls-22_5-seed2.lock exists" in line for line in lines)
    # the command line prints the same table, and bad input is one line
    assert main(["benchmark", "--out", str(out), "--summary"]) == 0
    assert "| utd_mhad | purls-22/5 | 57.50 |" in capsys.readouterr().out
    table = tmp_path / "table.md"
    assert main(["benchmark", "--out", str(out), "--summary", "--summary-file", str(table)]) == 0
    assert "| utd_mhad | purls-22/5 | 57.50 |" in table.read_text()
    table.write_text("mine\n")  # an existing file is refused unless --force
    assert main(["benchmark", "--out", str(out), "--summary", "--summary-file", str(table)]) == 2
    assert "--summary-file" in capsys.readouterr().err and table.read_text() == "mine\n"
    assert main(["benchmark", "--out", str(out), "--summary", "--summary-file", str(table), "--force"]) == 0
    assert "57.50" in table.read_text()
    assert main(["benchmark", "--out", str(tmp_path / "b2"), "--shard", "1"]) == 2
    assert "--shard must be i/n" in capsys.readouterr().err
    assert main(["benchmark", "--out", str(tmp_path / "b3"), "--summary"]) == 2
    assert "not a benchmark folder" in capsys.readouterr().err
    (tmp_path / "b4").mkdir()
    (tmp_path / "b4" / "benchmark.json").write_text('{"method": "pgf')  # truncated: was a traceback
    assert main(["benchmark", "--out", str(tmp_path / "b4"), "--summary"]) == 2
    assert "unreadable benchmark settings" in capsys.readouterr().err



def test_benchmark_resumes_an_interrupted_job(data_root, tmp_path):
    """A job whose earlier call was interrupted continues its run folder (it started a new one)."""
    need(data_root, "utd_mhad")
    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import train
    out = tmp_path / "bench"
    quick = ["train.epochs=2", "validation.mode=none", "train.threads=1"]
    cfg = build_config("pgfa", dataset="utd_mhad", split="purls-22/5", seed=1, overrides=quick,
                       data_root=data_root, device="cpu")
    cut = train(cfg, out / "runs", data_root=data_root, max_epochs=1)  # as a killed first call leaves it
    assert not (cut / "metrics.json").exists()
    lines = []
    (rec,) = run_benchmark("purls-small", [1], out, only=["utd_mhad:purls-22/5"], overrides=quick,
                           data_root=data_root, device="cpu", log=lines.append)
    assert [d.name for d in (out / "runs").iterdir()] == [cut.name]  # no second folder
    assert any(f"resuming {cut}" in line for line in lines)
    full = train(cfg, tmp_path / "full", data_root=data_root)
    assert json.loads(rec.read_text())["zsl_top1"] == json.loads((full / "metrics.json").read_text())["zsl_top1"]

def test_an_edited_config_file_is_not_mixed_into_the_table(data_root, tmp_path):
    """The settings kept the config file's name only: a later call trained the remaining jobs
    with the edited file into the same table."""
    need(data_root, "utd_mhad")
    out, cfg = tmp_path / "bench", tmp_path / "mine.yaml"
    cfg.write_text("train:\n  epochs: 1\n  threads: 1\n")
    args = dict(only=["utd_mhad:purls-22/5"], config=str(cfg), data_root=data_root, device="cpu",
                log=lambda m: None)
    Job("utd_mhad", "purls-22/5", 1).record(out).parent.mkdir(parents=True)
    Job("utd_mhad", "purls-22/5", 1).record(out).with_suffix(".lock").write_text("1\n")  # nothing trains
    assert run_benchmark("purls-small", [1], out, **args) == []
    assert run_benchmark("purls-small", [1], out, **args) == []  # the same file: accepted
    cfg.write_text("train:\n  epochs: 2\n  threads: 1\n")
    with pytest.raises(ConfigError, match="other settings \\(config_sha256: .*the config file was edited"):
        run_benchmark("purls-small", [1], out, **args)
    # a folder written before the digest was recorded is not refused for lacking it
    settings = json.loads((out / "benchmark.json").read_text())
    del settings["config_sha256"]
    (out / "benchmark.json").write_text(json.dumps(settings))
    assert run_benchmark("purls-small", [1], out, **args) == []


def test_runs_on_another_kind_of_device_are_not_mixed_into_the_table(data_root, tmp_path):
    """benchmark.json did not record the device: a folder begun on a GPU machine took CPU runs
    (other kernels, other numbers) into the same table."""
    need(data_root, "utd_mhad")
    out = tmp_path / "bench"
    args = dict(only=["utd_mhad:purls-22/5"], data_root=data_root, log=lambda m: None,
                overrides=["train.epochs=1", "train.threads=1"])
    Job("utd_mhad", "purls-22/5", 1).record(out).parent.mkdir(parents=True)
    Job("utd_mhad", "purls-22/5", 1).record(out).with_suffix(".lock").write_text("1\n")  # nothing trains
    assert run_benchmark("purls-small", [1], out, device="cpu", **args) == []
    settings = json.loads((out / "benchmark.json").read_text())
    assert settings["device"] == "cpu"
    settings["device"] = "cuda"  # as a GPU machine would have written it
    (out / "benchmark.json").write_text(json.dumps(settings))
    with pytest.raises(ConfigError, match="other settings \\(device: 'cuda' there, 'cpu' now\\)"):
        run_benchmark("purls-small", [1], out, device="cpu", **args)
    del settings["device"]  # a folder from before the device was recorded is not refused for it
    (out / "benchmark.json").write_text(json.dumps(settings))
    assert run_benchmark("purls-small", [1], out, device="cpu", **args) == []


def test_changed_feature_files_are_not_mixed_into_the_table(data_root, tmp_path):
    """benchmark.json names the --features folder only: files re-extracted into it were tabled
    with the results of the earlier ones."""
    import numpy as np
    features = need(data_root, "features")
    mine = tmp_path / "features"
    mine.mkdir()
    for name in ("utd_mhad_ru5.npz", "utd_mhad_text_mpnet_L5.npy"):
        (mine / name).write_bytes((features / name).read_bytes())
    out = tmp_path / "bench"
    args = dict(method="devise", features=mine, only=["utd_mhad:purls-22/5"], overrides=["epochs=1"],
                log=lambda m: None)
    (rec,) = run_benchmark("purls-small", [1], out, **args)
    assert set(json.loads(rec.read_text())["sha256"]) == {"utd_mhad_ru5.npz", "utd_mhad_text_mpnet_L5.npy"}
    with np.load(mine / "utd_mhad_ru5.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["train_data"] = arrays["train_data"] * 1.01  # as a re-extraction with another encoder
    np.savez(mine / "utd_mhad_ru5.npz", **arrays)
    with pytest.raises(ConfigError, match="utd_mhad_ru5.npz in --features has changed since "
                                          "utd_mhad-purls-22_5-seed1.json was computed from it"):
        run_benchmark("purls-small", [1, 2], out, **args)
    assert not Job("utd_mhad", "purls-22/5", 2).record(out).exists()


def test_a_missing_dataset_is_found_before_any_job_trains(data_root, tmp_path):
    """With NW-UCLA absent, the UTD-MHAD jobs trained first and the benchmark stopped at the
    first NW-UCLA job; now nothing trains and the error names the folder."""
    need(data_root, "utd_mhad")
    from zeroskel.errors import DataError
    root = tmp_path / "root"
    root.mkdir()
    for name in ("utd_mhad", "splits", "text"):
        if (data_root / name).exists():
            (root / name).symlink_to(data_root / name)
    with pytest.raises(DataError, match="dataset 'nw_ucla': folder .*root/nw_ucla not found"):
        run_benchmark("purls-small", [1], tmp_path / "bench", only=["utd_mhad:purls-22/5", "nw_ucla:purls-8/2"],
                      overrides=["train.epochs=1", "train.threads=1"], data_root=root, device="cpu",
                      log=lambda m: None)
    assert not (tmp_path / "bench").exists()


@pytest.mark.parametrize("method, config, item, match", [
    ("devise", None, "epochs=0", "devise: epochs must be > 0, got 0"),
    ("cada_vae", None, "lr=-1", "cada_vae: lr must be > 0, got -1"),
    ("flora", "cpu", "train.lr=-1", "flora: lr must be a number > 0, got -1")])
def test_a_bad_set_value_fails_before_the_folder_is_tied_to_it(data_root, tmp_path, capsys, method, config,
                                                               item, match):
    """A bad value (not key) passed the up-front check and failed at the first fit, after
    benchmark.json had recorded it: the same --out then refused the corrected call."""
    features = need(data_root, "features")
    out = tmp_path / "bench"
    args = ["benchmark", "--method", method, "--features", str(features), "--out", str(out), "--seeds", "1",
            "--only", "utd_mhad:purls-22/5", "--set", item] + (["--config", config] if config else [])
    assert main(args) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()
    # eval-features checks it before reading any file, too
    assert main(["eval-features", "--method", method, "--features", str(tmp_path / "none.npz"), "--text-bank",
                 str(tmp_path / "none.npy"), "--dataset", "utd_mhad", "--set", item]
                + (["--preset", config] if config else [])) == 2
    err = capsys.readouterr().err
    assert match in err and "none.npz" not in err


@pytest.mark.parametrize("item, match", [
    ("train.lr=-1", "train.lr must be a non-negative number, got -1"),            # found by the config check
    ("alignment.alpha=7", "alignment.alpha must be in \\(0, 1\\], got 7"),
    ("train.epochs=0", "train.epochs must be >= 1, got 0"),                       # found when training starts
    ("model.args.x=1", "encoder 'shiftgcn' has no argument\\(s\\) 'x'")])
def test_a_pgfa_config_error_does_not_tie_the_folder(data_root, tmp_path, item, match):
    """benchmark.json was written before the first job found the error; the same --out then
    refused the corrected call as 'other settings'."""
    need(data_root, "utd_mhad")
    out = tmp_path / "bench"
    with pytest.raises(ConfigError, match=match):
        run_benchmark("purls-small", [1], out, only=["utd_mhad:purls-22/5"], overrides=[item, "train.threads=1"],
                      data_root=data_root, device="cpu", log=lambda m: None)
    assert not out.exists()
    # a folder that already held a benchmark keeps its settings file
    out.mkdir()
    (out / "benchmark.json").write_text(json.dumps({"method": "pgfa", "suite": "purls-small", "config": None,
                                                    "overrides": [item, "train.threads=1"]}))
    with pytest.raises(ConfigError, match=match):
        run_benchmark("purls-small", [1], out, only=["utd_mhad:purls-22/5"], overrides=[item, "train.threads=1"],
                      data_root=data_root, device="cpu", log=lambda m: None)
    assert sorted(p.name for p in out.iterdir()) == ["benchmark.json"]


def test_feature_method_benchmark(data_root, tmp_path, capsys):
    """A feature method over the shipped feature files: the record is what eval-features gives
    for the same file and seed; missing files and misplaced flags are named."""
    features = need(data_root, "features")
    out = tmp_path / "devise"
    lines = []
    (rec_path,) = run_benchmark("purls-small", [1], out, method="devise", features=features,
                                only=["utd_mhad:purls-22/5"], log=lines.append)
    rec = json.loads(rec_path.read_text())
    assert rec["file"] == "utd_mhad_ru5" and set(rec["gzsl"]) == {"stacking", "uncalibrated"}
    assert main(["eval-features", "--method", "devise", "--features", str(features / "utd_mhad_ru5.npz"),
                 "--text-bank", str(features / "utd_mhad_text_mpnet_L5.npy"), "--seed", "1"]) == 0
    assert f"ZSL top-1 {rec['zsl_top1']:.2f}" in capsys.readouterr().out
    table = summarize(out)
    assert f"| utd_mhad | purls-22/5 | 57.50 | {rec['zsl_top1']:.2f} (1 seed) |" in table
    with pytest.raises(ConfigError, match="flora works on skeleton features: pass --features"):
        run_benchmark("purls-small", [1], tmp_path / "f", method="flora")
    with pytest.raises(ConfigError, match="--features is for the feature methods"):
        run_benchmark("purls-small", [1], tmp_path / "p", features=features)
    (tmp_path / "partial").mkdir()
    with pytest.raises(ConfigError, match="missing nw_ucla_ru2.npz, nw_ucla_ru5.npz"):
        run_benchmark("purls-small", [1], tmp_path / "x", method="smie", features=tmp_path / "partial")
    with pytest.raises(ConfigError, match="nope"):
        run_benchmark("purls-small", [1], tmp_path / "x", method="flora", config="nope", features=features)
    with pytest.raises(ConfigError, match="unknown benchmark method 'flor'"):
        run_benchmark("purls-small", [1], tmp_path / "x", method="flor")
    assert not (tmp_path / "f").exists() and not (tmp_path / "x").exists()
    # every shipped file holds its split's unseen classes, and a misnamed one is refused before any fit
    from zeroskel.engine.benchmark import _check_feature_file
    for ds, sp in [("utd_mhad", "purls-22/5"), ("utd_mhad", "purls-18/9"), ("utd_mhad", "purls-14/13"),
                   ("nw_ucla", "purls-8/2"), ("nw_ucla", "purls-5/5")]:
        _check_feature_file(features, ds, sp)
    import shutil
    bad = tmp_path / "misnamed"
    bad.mkdir()
    shutil.copy(features / "utd_mhad_ru9.npz", bad / "utd_mhad_ru5.npz")  # was tabled as 22/5
    shutil.copy(features / "utd_mhad_text_mpnet_L5.npy", bad)
    with pytest.raises(ConfigError, match="utd_mhad_ru5.npz: its unseen classes .* is the file misnamed"):
        run_benchmark("purls-small", [1], tmp_path / "m", method="devise", features=bad,
                      only=["utd_mhad:purls-22/5"])
    assert not (tmp_path / "m").exists()
    shutil.copy(features / "utd_mhad_ru5.npz", bad / "utd_mhad_ru5.npz")
    shutil.copy(features / "nw_ucla_text_mpnet_L5.npy", bad / "utd_mhad_text_mpnet_L5.npy")
    with pytest.raises(ConfigError, match="texts for 10 classes, utd_mhad has 27"):
        run_benchmark("purls-small", [1], tmp_path / "m", method="devise", features=bad,
                      only=["utd_mhad:purls-22/5"])
    assert not (tmp_path / "m").exists()  # no benchmark.json left to tie the folder to this call


def test_cli_bad_threads_is_one_line(tmp_path, capsys):
    assert main(["benchmark", "--out", str(tmp_path / "b"), "--threads", "0"]) == 2
    assert "--threads must be >= 1" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_shards_starting_together_agree_on_one_settings_file(tmp_path):
    """Shards that start at the same instant on a new folder: exactly one writes
    benchmark.json, every other one compares with it (it used to be last-writer-wins).
    The race is repeated in 20 fresh folders, since one start may not interleave."""
    import threading

    from zeroskel.engine.benchmark import _check_settings

    n = 8
    for rnd in range(20):
        out = tmp_path / str(rnd)
        out.mkdir()
        barrier = threading.Barrier(n)
        outcome: dict[int, str] = {}

        def shard(i: int) -> None:
            settings = {"method": "pgfa", "suite": "purls-small", "config": None, "overrides": [f"seed={i}"]}
            barrier.wait()
            try:
                _check_settings(out, settings)
                outcome[i] = "wrote"
            except ConfigError as e:
                outcome[i] = "refused" if "other settings" in str(e) else repr(e)
            except Exception as e:  # noqa: BLE001 - reported by the assertion below
                outcome[i] = repr(e)

        threads = [threading.Thread(target=shard, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i, o in outcome.items() if o == "wrote"]
        assert len(winners) == 1 and sorted(outcome.values()).count("refused") == n - 1, outcome
        assert json.loads((out / "benchmark.json").read_text())["overrides"] == [f"seed={winners[0]}"]
        assert sorted(p.name for p in out.iterdir()) == ["benchmark.json"]  # no temporary file left
