"""The training engine: schedules, checkpoints, exact resume, configs and run directories."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from zeroskel.engine import config as C
from zeroskel.engine.runs import create_run_dir, run_name
from zeroskel.engine.trainer import (OptimConfig, Trainer, load_checkpoint, lr_at_epoch, resolve_device,
                                     save_checkpoint)
from zeroskel.errors import CheckpointError, ConfigError


# ---------------------------------------------------------------- schedules
def test_warmup_then_constant_and_reference_bug():
    cfg = OptimConfig(lr=0.05, warmup_epochs=5, epochs=50)
    assert [round(lr_at_epoch(cfg, e), 6) for e in range(7)] == [0.01, 0.02, 0.03, 0.04, 0.05, 0.05, 0.05]
    bug = OptimConfig(lr=0.05, warmup_epochs=5, epochs=50, warmup_reference_bug=True)
    assert lr_at_epoch(bug, 0) == 0.0  # the reference trains epoch 0 at lr 0
    assert lr_at_epoch(bug, 4) == pytest.approx(0.04) and lr_at_epoch(bug, 5) == 0.05


def test_step_and_cosine_schedules():
    step = OptimConfig(lr=1.0, warmup_epochs=0, schedule="step", milestones=(2, 4), gamma=0.1, epochs=6)
    assert [lr_at_epoch(step, e) for e in range(6)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    cos = OptimConfig(lr=1.0, warmup_epochs=1, schedule="cosine", min_lr=0.0, epochs=5)
    lrs = [lr_at_epoch(cos, e) for e in range(5)]
    assert lrs[0] == 1.0 and lrs[1] == pytest.approx(1.0) and lrs[-1] == pytest.approx(0.0)
    assert lrs[2] == pytest.approx(0.5 * (1 + math.cos(math.pi / 3)))


def test_optim_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="optimizer.*'rmsprop'.*adam"):
        OptimConfig(optimizer="rmsprop")
    with pytest.raises(ConfigError, match="train.lr"):
        OptimConfig(lr=-1)
    with pytest.raises(ConfigError, match="lr schedule"):
        OptimConfig(schedule="poly")
    # the one integer rule (_checks.as_whole): a whole float is its int, a fraction is refused
    o = OptimConfig(schedule="step", milestones=[2.0, 4], warmup_epochs=1.0, epochs=6.0)
    assert (o.milestones, o.warmup_epochs, o.epochs) == ((2, 4), 1, 6) and type(o.milestones[0]) is int
    for kw, msg in ((dict(milestones=[2.5]), "train.milestones must be a list of epoch numbers"),
                    (dict(warmup_epochs=0.5), "train.warmup_epochs must be a non-negative integer, got 0.5"),
                    (dict(epochs=True), "train.epochs must be a non-negative integer, got True")):
        with pytest.raises(ConfigError, match=msg):
            OptimConfig(**kw)
    # a learning rate that leaves float32 failed inside optimizer.step with torch's overflow error
    with pytest.raises(ConfigError, match=r"learning rate of epoch 2 is 5e\+58 \(train.lr 0.05, train.gamma 1e\+60"):
        OptimConfig(lr=0.05, schedule="step", milestones=[1], gamma=1e60, warmup_epochs=0, epochs=3)
    OptimConfig(lr=1e-30, schedule="step", milestones=[1], gamma=1e60, warmup_epochs=0, epochs=3)  # 1e30 fits


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ConfigError, match="unknown device .*; valid: auto, cpu, cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


# ---------------------------------------------------------------- trainer
def _problem(seed=0):
    """A tiny regression task with dropout, so that RNG handling matters."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = (x @ rng.normal(size=(5, 1))).astype(np.float32)

    def batches(epoch, rng):
        perm = rng.permutation(len(x))
        for s in range(0, len(x), 16):
            i = perm[s:s + 16]
            yield torch.from_numpy(x[i] + rng.normal(scale=0.1, size=x[i].shape).astype(np.float32)), torch.from_numpy(y[i])

    def step(model, batch):
        xb, yb = batch
        return ((model(xb) - yb) ** 2).mean(), len(xb)

    return batches, step


def _trainer(tmp_path, name, seed=3):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
    batches, step = _problem()
    return Trainer(model, step, batches, OptimConfig(lr=0.05, warmup_epochs=1, epochs=4), seed=seed,
                   checkpoint=tmp_path / f"{name}.pt",
                   eval_fn=lambda m, e: {"w0": float(m[0].weight[0, 0].detach())})


def test_resume_after_interruption_is_identical(tmp_path):
    full = _trainer(tmp_path, "full")
    h_full = full.fit()
    part = _trainer(tmp_path, "part")
    part.fit(max_epochs=2)  # "interrupted" after epoch 2
    assert part.epoch == 2
    again = _trainer(tmp_path, "part")  # a fresh process: new model, resumes from the file
    h_res = again.fit()
    assert again.epoch == 4
    assert [h["loss"] for h in h_res] == [h["loss"] for h in h_full]
    assert [h["w0"] for h in h_res] == [h["w0"] for h in h_full]
    for a, b in zip(full.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)


def test_eval_every_skips_evaluation_without_changing_training(tmp_path):
    full = _trainer(tmp_path, "every1")
    h1 = full.fit()
    sparse = _trainer(tmp_path, "every3")
    sparse.eval_every = 3
    h3 = sparse.fit()
    assert ["w0" in h for h in h3] == [False, False, True, True]  # every 3rd epoch and the last
    assert [h["loss"] for h in h3] == [h["loss"] for h in h1]      # evaluation never touches training
    assert h3[2]["w0"] == h1[2]["w0"] and h3[3]["w0"] == h1[3]["w0"]
    with pytest.raises(ConfigError, match="eval_every must be a positive integer, got 0"):
        Trainer(nn.Linear(1, 1), None, None, OptimConfig(), eval_every=0)


def test_precision_names_and_autocast():
    from zeroskel.engine.trainer import autocast, check_precision

    cpu = torch.device("cpu")
    assert check_precision("bf16", cpu) == "bf16"
    with pytest.raises(ConfigError, match="unknown train.precision 'fp16'; valid: bf16, fp32"):
        check_precision("fp16", cpu)
    lin, x = nn.Linear(4, 3), torch.randn(2, 4)
    with autocast(cpu, "fp32"):
        assert lin(x).dtype == torch.float32
    with autocast(cpu, "bf16"):
        y = lin(x)
    assert y.dtype == torch.bfloat16 and lin.weight.dtype == torch.float32
    y.float().sum().backward()
    assert lin.weight.grad.dtype == torch.float32


def test_seed_changes_results(tmp_path):
    a = _trainer(tmp_path, "a", seed=1).fit()
    b = _trainer(tmp_path, "b", seed=1).fit()
    c = _trainer(tmp_path, "c", seed=2).fit()
    assert [h["loss"] for h in a] == [h["loss"] for h in b]
    assert [h["loss"] for h in a] != [h["loss"] for h in c]


def test_checkpoint_roundtrip_and_corruption(tmp_path):
    p = save_checkpoint({"a": torch.arange(3), "cfg": {"x": [1, 2]}}, tmp_path / "c.pt")
    st = load_checkpoint(p)
    assert torch.equal(st["a"], torch.arange(3)) and st["cfg"] == {"x": [1, 2]}
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind
    (tmp_path / "taken.pt").mkdir()  # a write that fails at the last step leaves none either
    with pytest.raises(OSError):
        save_checkpoint({"a": 1}, tmp_path / "taken.pt")
    assert not list(tmp_path.glob(".*tmp*"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    with pytest.raises(CheckpointError, match=r"bad\.pt.*corrupt.*truncated or damaged"):
        load_checkpoint(bad)
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match=r"text\.pt.*not a file written by torch\.save"):
        load_checkpoint(tmp_path / "text.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pt.*the file is empty"):
        load_checkpoint(tmp_path / "empty.pt")
    # a pickled object outside weights_only's allow-list: refused, with no advice to unpickle it
    import argparse
    torch.save({"a": argparse.Namespace(x=1)}, tmp_path / "obj.pt")
    with pytest.raises(CheckpointError, match=r"obj\.pt.*Python objects beyond tensors") as err:
        load_checkpoint(tmp_path / "obj.pt")
    assert "weights_only=False" not in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_resume_from_mismatched_checkpoint_is_a_clear_error(tmp_path):
    t = _trainer(tmp_path, "m")
    t.fit(max_epochs=1)
    other = Trainer(nn.Linear(5, 1), t.step_fn, t.batches_fn, OptimConfig(epochs=2), checkpoint=tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="m.pt.*does not match"):
        other.fit()


# ---------------------------------------------------------------- configs
def test_build_config_presets_and_overrides():
    cfg = C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", seed=3,
                         overrides=["train.lr=0.01", "alignment.alpha=0.5", "data.augment.random_crop=[0.5, 1]"])
    assert cfg["preset"] == "small" and cfg["seed"] == 3
    assert cfg["train"]["lr"] == 0.01 and cfg["alignment"]["alpha"] == 0.5
    assert cfg["data"]["augment"]["random_crop"] == [0.5, 1]
    ntu = C.build_config("pgfa", dataset="ntu120", split="synse-110/10")
    assert ntu["train"]["lr"] == 0.005 and ntu["alignment"]["alpha"] == 0.4
    assert ntu["train"]["optimizer"] == "sgd" and ntu["train"]["momentum"] == 0.9
    assert ntu["train"]["weight_decay"] == 5e-4 and ntu["train"]["warmup_epochs"] == 5
    assert ntu["train"]["epochs"] == 50 and ntu["train"]["batch_size"] == 128
    assert ntu["text"] == {"source": "pgfa-des", "model": "all-mpnet-base-v2", "train_sources": None,
                           "segment_sources": None, "part_sources": None}
    assert cfg["text"]["segment_sources"] == ["name+purls-start", "name+purls-middle", "name+purls-end"]
    assert cfg["model"]["encoder"] == "shiftgcn" and cfg["alignment"]["center"] is True
    assert cfg["validation"]["select"] == "last" and ntu["validation"]["select"] == "best"
    # the small preset's per_dataset block: NW-UCLA trains 20 epochs, the budget benchmarked there
    assert cfg["train"]["epochs"] == 40
    assert C.build_config("pgfa", dataset="nw_ucla", split="purls-8/2")["train"]["epochs"] == 20
    # the test subjects are centred one by one at test time (four in UTD-MHAD, ten in NW-UCLA's view)
    assert cfg["alignment"]["center_by"] == "subject"
    assert C.build_config("pgfa", dataset="nw_ucla", split="purls-8/2")["alignment"]["center_by"] == "subject"
    assert ntu["alignment"].get("center_by") is None   # the paper presets keep the reference step
    # only the datasets it was validated on: a custom dataset with the small preset keeps one mean
    assert C.build_config("pgfa", dataset="my_data.npz", split="x", config="small")["alignment"]["center_by"] is None
    from zeroskel.methods.pgfa import check_config
    with pytest.raises(ConfigError, match="unknown validation.select 'final'; valid: best, last"):
        check_config(C.build_config("pgfa", dataset="utd_mhad", split="x", overrides=["validation.select=final"]))
    with pytest.raises(ConfigError, match="alignment.center_by must be a per-sample metadata key"):
        check_config(C.build_config("pgfa", dataset="utd_mhad", split="x", overrides=["alignment.center_by=3"]))
    assert C.build_config("pgfa", dataset="pku_mmd1", split="x")["alignment"]["alpha"] == 1.0
    assert C.build_config("pgfa", dataset="ntu60", split="x")["train"]["lr"] == 0.05
    assert C.build_config("pgfa", config="ntu60", dataset="utd_mhad", split="x")["preset"] == "ntu60"



def test_override_errors_name_their_flag_and_alignment_enabled_is_boolean():
    from zeroskel.engine.config import parse_override
    from zeroskel.methods.alignment import align_kwargs
    with pytest.raises(ConfigError, match="--align 'noequals': expected key=value, e.g. alpha=0.5"):
        parse_override("noequals", "--align")
    with pytest.raises(ConfigError, match="--set '=3': empty key"):
        parse_override("=3")
    for bad in ("maybe", 0.0):  # 'maybe' ran the alignment and was recorded as enabled: maybe
        with pytest.raises(ConfigError, match="alignment.enabled must be true or false"):
            align_kwargs({"enabled": bad})
    assert align_kwargs({"enabled": False})["alpha"] == 0.9

def test_config_file_and_unknown_keys(tmp_path):
    f = tmp_path / "my.yaml"
    f.write_text("train:\n  epochs: 7\nalignment:\n  beta: 0.5\n")
    cfg = C.build_config("pgfa", dataset="nw_ucla", split="purls-8/2", config=str(f), overrides=["train.epochs=9"])
    assert cfg["train"]["epochs"] == 9 and cfg["alignment"]["beta"] == 0.5  # --set wins over the file
    f.write_text("train:\n  epoch: 7\n")
    with pytest.raises(ConfigError, match=r"my.yaml.*unknown config key 'train.epoch'.*train.epochs"):
        C.build_config("pgfa", dataset="nw_ucla", split="purls-8/2", config=str(f))
    with pytest.raises(ConfigError, match=r"--set trian.lr=1.*unknown config key 'trian'"):
        C.build_config("pgfa", dataset="nw_ucla", split="x", overrides=["trian.lr=1"])
    with pytest.raises(ConfigError, match="expected key=value"):
        C.build_config("pgfa", dataset="nw_ucla", split="x", overrides=["train.lr"])
    with pytest.raises(ConfigError, match="'train' is a section"):
        C.build_config("pgfa", dataset="nw_ucla", split="x", overrides=["train=3"])
    with pytest.raises(ConfigError, match="config file small.yaml: no such file; the pgfa preset is named without "
                                          "'.yaml': --config small"):
        C.build_config("pgfa", dataset="nw_ucla", split="x", config="small.yaml")
    with pytest.raises(ConfigError, match="unknown pgfa preset 'tiny'; valid: .*ntu60.*small"):
        C.build_config("pgfa", dataset="nw_ucla", split="x", config="tiny")
    with pytest.raises(ConfigError, match="unknown method .*valid: .*pgfa"):
        C.build_config("pgfx", dataset="nw_ucla", split="x")
    (tmp_path / "bad.yaml").write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML \(line 2, column 1: expected ',' or ']'") as err:
        C.build_config("pgfa", dataset="nw_ucla", split="x", config=str(tmp_path / "bad.yaml"))
    assert "\n" not in str(err.value)  # one line, not PyYAML's quoted excerpt with a caret
    with pytest.raises(ConfigError, match=r"--set 'train.lr=\[1': value is not valid YAML \(line 1, column 3"):
        C.build_config("pgfa", dataset="nw_ucla", split="x", overrides=["train.lr=[1"])


def test_config_files_read_scientific_notation_as_numbers(tmp_path):
    # YAML 1.1 (PyYAML) reads 1e-4 as text; a config file and --set must agree on the value
    f = tmp_path / "sci.yaml"
    f.write_text("train: {lr: 1e-4, weight_decay: 5E-3}\nalignment: {epsilon: '1e-2'}\n")
    cfg = C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", config=str(f),
                         overrides=["data.augment.random_crop=[7e-1, 1]"])
    assert cfg["train"]["lr"] == 1e-4 and cfg["train"]["weight_decay"] == 5e-3
    assert cfg["data"]["augment"]["random_crop"] == [0.7, 1]   # inside a list too
    assert cfg["alignment"]["epsilon"] == "1e-2"                # quoted: text, as the file says
    assert C.parse_override("train.lr=1e-4") == {"train": {"lr": 1e-4}}
    import yaml
    assert yaml.safe_load("lr: 1e-4") == {"lr": "1e-4"}        # PyYAML's own loader is left as it was


def test_per_dataset_blocks(tmp_path):
    f = tmp_path / "two.yaml"
    f.write_text("train: {epochs: 30}\nper_dataset:\n  nw_ucla: {train: {epochs: 12}, alignment: {alpha: 0.5}}\n")
    nw = C.build_config("pgfa", dataset="nw_ucla", split="purls-8/2", config=str(f))
    utd = C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", config=str(f))
    assert (nw["train"]["epochs"], nw["alignment"]["alpha"]) == (12, 0.5)
    assert (utd["train"]["epochs"], utd["alignment"]["alpha"]) == (30, 0.9)
    assert "per_dataset" not in nw  # applied, not carried: a saved config.yaml re-reads the same
    over = C.build_config("pgfa", dataset="nw_ucla", split="purls-8/2", config=str(f), overrides=["train.epochs=9"])
    assert over["train"]["epochs"] == 9  # --set still wins over the block
    saved = tmp_path / "config.yaml"
    C.dump_config(over, saved)
    assert C.build_config("pgfa", config=str(saved))["train"]["epochs"] == 9
    f.write_text("per_dataset:\n  nw_ucla: {train: {epoch: 12}}\n")
    with pytest.raises(ConfigError, match=r"two.yaml per_dataset.nw_ucla: unknown config key 'train.epoch'"):
        C.build_config("pgfa", dataset="nw_ucla", split="x", config=str(f))
    f.write_text("per_dataset:\n  nw-ucla: {train: {epochs: 12}}\n")  # matched nothing, silently
    with pytest.raises(ConfigError, match=r"two.yaml: per_dataset.nw-ucla names no dataset \(did you mean nw_ucla\?\)"):
        C.build_config("pgfa", dataset="nw_ucla", split="x", config=str(f))
    f.write_text("per_dataset:\n  my_utd_mhad_recordings: {train: {epochs: 12}}\n")  # a custom dataset's block
    assert C.build_config("pgfa", dataset="nw_ucla", split="x", config=str(f))["train"]["epochs"] == 20
    f.write_text("per_dataset: [nw_ucla]\n")
    with pytest.raises(ConfigError, match=r"two.yaml: per_dataset must map dataset names to config sections"):
        C.build_config("pgfa", dataset="nw_ucla", split="x", config=str(f))


def test_open_sections_take_any_keys_across_merges(tmp_path):
    """model.args is open (extra encoder arguments): two --set items combine, and a preset that
    already filled it can be extended; a closed section still rejects unknown keys."""
    assert "model.args" in C.open_sections(C.load_base("pgfa"))
    cfg = C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5",
                         overrides=["model.args.channels=[32,64,128,256]", "model.args.strides=[1,2,2,1]"])
    assert cfg["model"]["args"] == {"channels": [32, 64, 128, 256], "strides": [1, 2, 2, 1]}
    pre = C.build_config("pretrain", dataset="utd_mhad", split="purls-22/5", overrides=["model.args.strides=[1,2,2,2]"])
    assert pre["model"]["args"] == {"channels": [32, 64, 128, 256], "strides": [1, 2, 2, 2]}  # preset's widths kept
    assert C.build_config("pretrain", dataset="utd_mhad", split="x", overrides=["model.args=null"])["model"]["args"] == {}
    with pytest.raises(ConfigError, match="unknown config key 'model.argz'"):
        C.build_config("pgfa", dataset="utd_mhad", split="x", overrides=["model.argz.channels=[8]"])
    saved = tmp_path / "config.yaml"
    C.dump_config(cfg, saved)
    assert C.validate_config(C.load_yaml(saved), "pgfa")["model"]["args"]["strides"] == [1, 2, 2, 1]


# ---------------------------------------------------------------- augmentation
def _skeletons(b=6, t=5, v=4, m=2, seed=0):
    return np.random.default_rng(seed).normal(size=(b, 3, t, v, m)).astype(np.float32)


def test_augment_rotations_are_rigid_and_about_the_stated_axes():
    from zeroskel.engine.data import augment_batch

    x = _skeletons()
    lengths = np.full(len(x), x.shape[2])
    yaw = augment_batch(x, lengths, {"rotate_deg": 30}, np.random.default_rng(1))
    np.testing.assert_array_equal(yaw[:, 1], x[:, 1])  # about the vertical axis: y untouched
    tilt = augment_batch(x, lengths, {"tilt_deg": 15}, np.random.default_rng(1))
    assert np.abs(tilt[:, 1] - x[:, 1]).max() > 1e-3  # tilting moves y
    for out in (yaw, tilt):  # rigid: every joint keeps its distance to the origin
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(x, axis=1), rtol=1e-5)
    # angles stay within the bound: the angle between a joint and its image is <= 2 x 15 deg
    cos = (tilt * x).sum(1) / (np.linalg.norm(x, axis=1) ** 2)
    assert cos.min() >= np.cos(np.deg2rad(30)) - 1e-5


def test_augment_shear_is_unit_diagonal_with_bounded_off_diagonal():
    from zeroskel.engine.data import augment_batch

    # unit vectors along x, y, z as three "joints": their images are the shear matrix's columns
    x = np.zeros((4, 3, 1, 3, 1), np.float32)
    for j in range(3):
        x[:, j, 0, j, 0] = 1.0
    out = augment_batch(x, np.ones(4, int), {"shear": 0.3}, np.random.default_rng(2))
    mats = out[:, :, 0, :, 0]  # (B, 3 coords, 3 joints) = the per-sample matrices
    np.testing.assert_allclose(mats[:, [0, 1, 2], [0, 1, 2]], 1.0)
    off = mats[:, ~np.eye(3, dtype=bool)]
    assert np.abs(off).max() <= 0.3 and np.abs(off).min() > 0
    assert len({tuple(m.ravel()) for m in mats}) == 4  # one matrix per sample


def test_augment_keys_that_are_off_draw_no_random_numbers():
    # older runs (without tilt_deg / shear) must replay bit for bit
    from zeroskel.engine.data import augment_batch

    x = _skeletons()
    lengths = np.array([5, 4, 5, 3, 5, 5])
    old = {"random_crop": [0.7, 1.0], "rotate_deg": 30, "scale": 0.2}
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    a = augment_batch(x, lengths, old, r1)
    b = augment_batch(x, lengths, {**old, "tilt_deg": 0.0, "shear": 0.0}, r2)
    np.testing.assert_array_equal(a, b)
    assert r1.random() == r2.random()
    assert not np.array_equal(augment_batch(x, lengths, {**old, "shear": 0.2}, np.random.default_rng(5)), a)


def test_augment_values_are_checked_with_the_key_named():
    from zeroskel.methods.pgfa import check_config

    ok = C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5",
                        overrides=["data.augment.tilt_deg=15", "data.augment.shear=0.3"])
    check_config(ok)
    assert ok["data"]["augment"]["shear"] == 0.3
    for bad, key in (("data.augment.shear=-0.1", "shear"), ("data.augment.tilt_deg=120", "tilt_deg"),
                     ("data.augment.scale=one", "scale"), ("data.augment.random_crop=[0.5]", "random_crop")):
        cfg = C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", overrides=[bad])
        with pytest.raises(ConfigError, match=f"data.augment.{key} must be"):
            check_config(cfg)
    with pytest.raises(ConfigError, match="unknown config key 'data.augment.sheer'.*did you mean data.augment.shear"):
        C.build_config("pretrain", dataset="utd_mhad", split="purls-22/5", overrides=["data.augment.sheer=0.2"])


# ---------------------------------------------------------------- run directories
def test_run_dirs_are_never_reused(tmp_path):
    name = run_name("pgfa", "utd_mhad", "purls-22/5", 1)
    assert name == "pgfa-utd_mhad-purls-22_5-seed1"
    a = create_run_dir(tmp_path, name)
    (a / "metrics.json").write_text("{}")
    b = create_run_dir(tmp_path, name)
    c = create_run_dir(tmp_path, name)
    assert (a.name, b.name, c.name) == (name, name + "-1", name + "-2")
    assert (a / "metrics.json").read_text() == "{}" and not any(b.iterdir())


def test_runs_that_fail_before_training_leave_no_folder(tmp_path):
    from zeroskel.engine.runs import train
    from zeroskel.errors import DataError

    runs, empty_root = tmp_path / "runs", tmp_path / "data"
    empty_root.mkdir()
    cfg = C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", seed=1, overrides=["model.encoder=stgcn"])
    with pytest.raises(DataError, match="utd_mhad.*not found"):
        train(cfg, runs, data_root=empty_root)
    with pytest.raises(ConfigError, match="model.loss"):  # a value check: fails before the folder is made
        train(C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", overrides=["model.loss=ce"]), runs,
              data_root=empty_root)
    assert not runs.exists()  # nor the runs folder the failed call created
    runs.mkdir()
    with pytest.raises(DataError, match="utd_mhad.*not found"):
        train(cfg, runs, data_root=empty_root)
    assert list(runs.iterdir()) == []  # a runs folder that existed before is kept
    # a folder that already holds work is kept: only setup files are cleaned up
    kept = create_run_dir(runs, run_name("pgfa", "utd_mhad", "purls-22/5", 1))
    (kept / "stage1_last.pt").write_bytes(b"")
    with pytest.raises(DataError):
        train(cfg, runs, data_root=empty_root)
    assert [d.name for d in runs.iterdir()] == [kept.name]


def test_result_json_is_strict(tmp_path):
    """Result files are strict JSON: a class without test samples has NaN accuracy, which
    json.dumps wrote as a bare NaN that jq rejects; it is null now, numpy values plain."""
    import json

    from zeroskel._json import write_json

    write_json({"per_class": {"3": float("nan"), "4": np.float32(50.0)}, "n": np.int64(7),
                "cm": np.eye(2, dtype=np.int64), "inf": -math.inf, "ok": np.bool_(True)}, tmp_path / "m.json")
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text, parse_constant=lambda t: pytest.fail(f"bare {t}")) == \
        {"per_class": {"3": None, "4": 50.0}, "n": 7, "cm": [[1, 0], [0, 1]], "inf": None, "ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_relative_paths_in_a_run_config_become_absolute(tmp_path, monkeypatch):
    """config.yaml is read again by evaluate / resume / export, often from another folder:
    a relative data root or text-model folder is stored absolute; a known text model name
    stays a name."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "minilm").mkdir()
    (tmp_path / "minilm" / "modules.json").write_text("[]")
    cfg = C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", data_root="data",
                         overrides=["text.model=minilm"])
    assert cfg["data_root"] == str(tmp_path / "data") and cfg["text"]["model"] == str(tmp_path / "minilm")
    # a custom dataset, a split file and a class-text file too; names stay names
    for f in ("my.npz", "split.yaml", "texts.txt"):
        (tmp_path / f).write_text("")
    cfg = C.build_config("pgfa", dataset="my.npz", split="split.yaml", overrides=["text.source=texts.txt"])
    assert (cfg["dataset"], cfg["split"], cfg["text"]["source"]) == \
        tuple(str(tmp_path / f) for f in ("my.npz", "split.yaml", "texts.txt"))
    cfg = C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", overrides=["text.source=name+purls-global"])
    assert (cfg["dataset"], cfg["split"], cfg["text"]["source"]) == ("utd_mhad", "purls-22/5", "name+purls-global")
    cfg = C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", overrides=["text.model=not-here"])
    assert cfg["text"]["model"] == "not-here" and cfg["data_root"] is None
    assert C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5")["text"]["model"] == \
        C.load_base("pgfa")["text"]["model"]


def test_a_custom_dataset_folder_named_bare_is_stored_absolute(tmp_path, monkeypatch):
    """'--dataset mine_dir' (a folder here, no '/', no suffix) is read as a custom dataset, but
    config.yaml kept 'mine_dir', so 'evaluate' / 'resume' from another folder said
    "unknown dataset 'mine_dir'"; it is stored absolute like 'my.npz' or './mine_dir'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine_dir").mkdir()
    cfg = C.build_config("pgfa", dataset="mine_dir", split="split.yaml")
    assert cfg["dataset"] == str(tmp_path / "mine_dir")
    assert C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5")["dataset"] == "utd_mhad"
    (tmp_path / "utd_mhad").mkdir()  # a folder named as a built-in dataset: the name wins, as in read_dataset
    assert C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5")["dataset"] == "utd_mhad"


def test_the_preset_follows_set_preset_the_file_and_the_dataset_the_run_gets(tmp_path):
    """'--set preset=ntu60' was recorded in config.yaml but the small preset was applied; a
    file's 'preset: null' (a copy of base.yaml) still got small underneath, whose Shift-GCN
    widths leaked into its stgcn; '--set dataset=X' took another dataset's per_dataset block."""
    utd = dict(dataset="utd_mhad", split="purls-22/5")
    ntu = C.build_config("pgfa", **utd, overrides=["preset=ntu60"])
    assert ntu == C.build_config("pgfa", **utd, config="ntu60")
    assert ntu["preset"] == "ntu60" and ntu["model"]["encoder"] == "stgcn" and ntu["train"]["epochs"] == 50
    none = C.build_config("pgfa", **utd, overrides=["preset=null"])
    base = C.load_base("pgfa")
    assert none["preset"] is None and none["model"] == base["model"] and none["train"] == base["train"]
    f = tmp_path / "mine.yaml"
    f.write_text((C._config_dir("pgfa") / "base.yaml").read_text())
    assert C.build_config("pgfa", **utd, config=str(f))["model"]["args"] == {}
    assert C.build_config("pgfa", **utd, overrides=["dataset_presets.utd_mhad=ntu60"])["preset"] == "ntu60"
    f.write_text("dataset_presets: {utd_mhad: ntu60}\n")
    assert C.build_config("pgfa", **utd, config=str(f))["preset"] == "ntu60"
    with pytest.raises(ConfigError, match="unknown pgfa preset 'tiny'"):
        C.build_config("pgfa", **utd, overrides=["preset=tiny"])
    with pytest.raises(ConfigError, match="--set preset=small contradicts the preset 'ntu60'"):
        C.build_config("pgfa", **utd, config="ntu60", overrides=["preset=small"])
    moved = C.build_config("pgfa", dataset="nw_ucla", split="purls-8/2", overrides=["dataset=utd_mhad"])
    assert moved["dataset"] == "utd_mhad" and moved["train"]["epochs"] == 40  # UTD-MHAD's budget, not NW-UCLA's 20


def test_engine_keys_are_checked_before_the_run_folder(tmp_path):
    """Values that used to end in a traceback mid-run leaving a run folder behind ('seed=abc',
    'train.milestones=5', 'eval.batch_size=0', 'train.grad_clip=abc'), or that ran silently as
    something else ('seed=1.5' ran seed 1 in a folder named seed1.5, 'train.grad_clip=-1'
    reversed every gradient, 'train.nesterov=maybe' was true), are ConfigErrors naming the key."""
    from zeroskel.engine.runs import train

    runs = tmp_path / "runs"
    cases = {"seed=abc": "seed must be an integer", "seed=1.5": "seed must be an integer",
             "validation.seed=x": "validation.seed must be an integer >= 0 or null",
             "train.grad_clip=-1": "train.grad_clip must be a positive number", "train.grad_clip=abc": "train.grad_clip",
             "train.milestones=5": "train.milestones must be a list of epoch numbers",
             "train.milestones=[a]": "train.milestones", "train.gamma=-1": "train.gamma must be a non-negative",
             "train.nesterov=maybe": "train.nesterov must be true or false",
             "train.warmup_reference_bug=1": "train.warmup_reference_bug must be true or false",
             "train.deterministic=0": "train.deterministic must be true or false",
             "eval.gzsl=maybe": "eval.gzsl must be true or false", "eval.batch_size=0": "eval.batch_size must be",
             "validation.num_unseen=abc": "validation.num_unseen must be an integer >= 1 or null",
             "validation.fraction=2": r"validation.fraction must be in \(0, 1\)",
             "model.temperature=abc": "model.temperature must be a positive number",
             "model.target_sharpness=abc": "model.target_sharpness must be a non-negative number"}
    for item, msg in cases.items():
        cfg = C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", overrides=[item])
        with pytest.raises(ConfigError, match=msg):
            train(cfg, runs, data_root=tmp_path / "nowhere")
    for item in ("seed=x", "train.milestones=5", "train.gamma=-1", "train.grad_clip=0"):
        cfg = C.build_config("pretrain", dataset="utd_mhad", split="purls-22/5", overrides=[item])
        with pytest.raises(ConfigError, match=item.split("=")[0]):
            train(cfg, runs, data_root=tmp_path / "nowhere")
    assert not runs.exists()
    with pytest.raises(ConfigError, match=r"train.milestones .*got \(50, 80.5\)"):
        OptimConfig(schedule="step", milestones=(50, 80.5))


def test_relative_custom_dataset_split_and_text_files_become_absolute(tmp_path, monkeypatch):
    """'zeroskel train --dataset my_actions.npz --split my_split.yaml' (docs/custom_format.md)
    stored both relative: 'zeroskel evaluate RUN' from another folder failed with 'custom
    dataset my_actions.npz: no such file or folder'; so did a class-text file and --set
    data.cache_dir. Names stay names."""
    monkeypatch.chdir(tmp_path)
    for f in ("my_actions.npz", "my_split.yaml", "texts.txt"):
        (tmp_path / f).write_text("x")
    cfg = C.build_config("pgfa", dataset="my_actions.npz", split="my_split.yaml",
                         overrides=["text.source=texts.txt", "text.segment_sources=[name, texts.txt, 'a {name}']",
                                    "text.part_sources={hands: texts.txt}", "data.cache_dir=cache"])
    assert (cfg["dataset"], cfg["split"]) == (str(tmp_path / "my_actions.npz"), str(tmp_path / "my_split.yaml"))
    assert cfg["text"]["source"] == str(tmp_path / "texts.txt") and cfg["data"]["cache_dir"] == str(tmp_path / "cache")
    assert cfg["text"]["segment_sources"] == ["name", str(tmp_path / "texts.txt"), "a {name}"]
    assert cfg["text"]["part_sources"] == {"hands": str(tmp_path / "texts.txt")}
    assert run_name("pgfa", cfg["dataset"], cfg["split"], 1) == "pgfa-my_actions-my_split-seed1"
    (tmp_path / "utd_mhad").mkdir()  # a folder named like a built-in dataset does not replace it
    (tmp_path / "name").write_text("x")  # nor a file named like a text source
    named = C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", overrides=["text.source=name"])
    assert (named["dataset"], named["split"], named["text"]["source"]) == ("utd_mhad", "purls-22/5", "name")


def test_a_checkpoint_of_another_run_or_stage_is_not_resumed(tmp_path):
    """A rolling checkpoint copied from a run of another seed (or config, or stage) fits the
    model, and was continued and reported as this run; now it is refused, naming what differs."""
    import shutil

    t = _trainer(tmp_path, "seed3")
    t.extra_state = {"stage": 1, "config": {"seed": 3, "train": {"lr": 0.05}}}
    t.fit(max_epochs=1)
    shutil.copy(tmp_path / "seed3.pt", tmp_path / "seed4.pt")
    with pytest.raises(CheckpointError, match=r"seed4.pt was saved by another run or stage \(seed 3, this run's 4\)"):
        _trainer(tmp_path, "seed4", seed=4).fit()
    for extra, msg in (({"stage": 2, "config": {"seed": 3, "train": {"lr": 0.05}}}, "stage 1, this run's 2"),
                       ({"stage": 1, "config": {"seed": 3, "train": {"lr": 0.1}}}, "config keys train.lr")):
        other = _trainer(tmp_path, "seed3")
        other.extra_state = extra
        with pytest.raises(CheckpointError, match=msg):
            other.fit()
    same = _trainer(tmp_path, "seed3")
    same.extra_state = dict(t.extra_state)
    same.fit()
    assert same.epoch == 4


def test_a_text_value_that_yaml_reads_otherwise_is_refused_with_a_quoting_hint():
    """A class-text template such as '{name} walking' is invalid YAML, and '{name}' is the mapping
    {name: null}, which ended as 'text.source must be a source name'; both now say to quote."""
    for item, why in (("text.source={name} walking", "value is not valid YAML"),
                      ("text.source={name}", "{name} reads as a YAML mapping with no values")):
        with pytest.raises(ConfigError, match=r"--set '%s': %s.*goes in quotes: --set \"text.source='...'\""
                           % (re.escape(item), re.escape(why))):
            C.parse_override(item)
    assert C.parse_override("text.source='{name} walking'") == {"text": {"source": "{name} walking"}}
    assert C.parse_override("model.args={}") == {"model": {"args": {}}}
    assert C.parse_override("model.args={channels: [8]}") == {"model": {"args": {"channels": [8]}}}


def test_a_pgfa_checkpoint_of_a_newer_format_is_refused(tmp_path):
    """final.pt of a later zeroskel (checkpoint version 2) was read as version 1 without a word;
    the encoder checkpoint of pretraining already refused it."""
    from zeroskel.engine.trainer import save_checkpoint
    from zeroskel.methods.pgfa import CHECKPOINT_KIND, CHECKPOINT_VERSION, PGFAClassifier

    save_checkpoint({"kind": CHECKPOINT_KIND, "version": CHECKPOINT_VERSION + 1, "model": {}}, tmp_path / "final.pt")
    with pytest.raises(CheckpointError, match=r"final.pt: PGFA checkpoint version %d is newer than this zeroskel"
                       % (CHECKPOINT_VERSION + 1)):
        PGFAClassifier.load(tmp_path)


def test_random_crop_keeps_each_samples_length():
    """Training's random crop on zero-padded (unresized) data used to stretch every crop to the
    padded T, so training samples were full length while test samples kept their padding; each
    crop is now resized to its sample's own length. Resized data (every length T) is as before."""
    from zeroskel.data.transforms import RandomCrop
    from zeroskel.engine.data import augment_batch

    rng = np.random.default_rng(0)
    x = np.zeros((3, 3, 200, 20, 1), np.float32)
    lengths = np.array([30, 200, 30])
    for i, n in enumerate(lengths):
        x[i, :, :n] = rng.normal(size=(3, n, 20, 1)) + 1
    out = augment_batch(x, lengths, {"random_crop": [0.7, 1.0]}, np.random.default_rng(1))
    present = np.abs(out).sum(axis=(1, 3, 4)) > 0  # (N, T)
    assert present.sum(axis=1).tolist() == [30, 200, 30]
    assert (present[:, :30].all() and not present[0, 30:].any())
    # all lengths T: the crop of the old code, bit for bit
    full = np.full(3, 200)
    x[:, :, 30:] = x[:, :, :30].mean(axis=2, keepdims=True)
    want, _ = RandomCrop(frames=200, ratio=(0.7, 1.0)).apply_batch(x, full, np.random.default_rng(1))
    np.testing.assert_array_equal(augment_batch(x, full, {"random_crop": [0.7, 1.0]}, np.random.default_rng(1)), want)


def test_a_custom_dataset_defaults_to_its_class_names_as_texts(tmp_path, monkeypatch):
    """base.yaml's text source (pgfa-des) exists only for the built-in datasets, so a custom
    dataset without --set text.source stopped with 'unknown class text source'; its class names
    are the default now. A source the user names, and a preset's, are kept."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.npz").write_bytes(b"")
    assert C.build_config("pgfa", dataset="my.npz", split="s.yaml")["text"]["source"] == "name"
    assert C.build_config("pgfa", dataset="my.npz", split="s.yaml",
                          overrides=["text.source=a person doing {name}"])["text"]["source"] == "a person doing {name}"
    assert C.build_config("pgfa", dataset="my.npz", split="s.yaml", config="small")["text"]["source"] == \
        C.load_preset("pgfa", "small")["text"]["source"]
    assert C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", config=None, preset=None,
                          overrides=["preset=null"])["text"]["source"] == C.load_base("pgfa")["text"]["source"]


def test_values_that_yaml_1_1_reads_otherwise_are_refused_naming_the_key(tmp_path):
    """PyYAML (YAML 1.1) read --set train.epochs=010 as 8 (octal), x=1:30 as 90 (base 60) and
    yes / off as booleans, without a word; a config file and a split file did the same."""
    from zeroskel.data.splits import load_split_file
    for raw, why in (("010", "010 has a leading zero, which YAML 1.1 reads as the octal number 8: write 10"),
                     ("09", "09 has a leading zero, which YAML 1.1 reads as text: write 9"),
                     ("1:30", "1:30 is the base-60 number 90 in YAML 1.1"),
                     ("yes", "yes is a boolean in YAML 1.1 but text in YAML 1.2: write true or false"),
                     ("OFF", "OFF is a boolean in YAML 1.1")):
        with pytest.raises(ConfigError, match=re.escape(f"--set 'train.epochs={raw}': train.epochs: {why}")):
            C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", overrides=[f"train.epochs={raw}"])
    with pytest.raises(ConfigError, match=re.escape("model.args.channels[1]: 010 has a leading zero")):
        C.parse_override("model.args={channels: [8, 010]}")
    # what a user means, or asks for with quotes, reads as before
    assert C.parse_override("train.epochs=1_000") == {"train": {"epochs": 1000}}
    assert C.parse_override("train.epochs=10") == {"train": {"epochs": 10}}
    assert C.parse_override("x='010'") == {"x": "010"} and C.parse_override("x='1:30'") == {"x": "1:30"}
    assert C.parse_override("x=True") == {"x": True} and C.parse_override("x=0x10") == {"x": 16}
    assert C.parse_override("x=2024-01-01") == {"x": "2024-01-01"}   # a date object before
    assert C.parse_override("x=[-.5, +.5, .5]") == {"x": [-0.5, 0.5, 0.5]}   # '-.5' was text
    f = tmp_path / "my.yaml"
    f.write_text("train:\n  epochs: 010\n")
    with pytest.raises(ConfigError, match=re.escape(f"config file {f}: train.epochs: 010 has a leading zero")):
        C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", config=str(f))
    f.write_text("per_dataset:\n  on: {train: {epochs: 3}}\n")
    with pytest.raises(ConfigError, match=r"my.yaml: per_dataset.on: the key on is read differently"):
        C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", config=str(f))
    s = tmp_path / "split.yaml"
    s.write_text("unseen: [010, 012]\n")        # was the classes 8 and 10
    with pytest.raises(ConfigError, match=re.escape(f"split file {s}: unseen[0]: 010 has a leading zero")):
        load_split_file(s, "utd_mhad", 27)
    s.write_text("unseen: [10, 12]\n")
    assert load_split_file(s, "utd_mhad", 27).unseen == (10, 12)


def test_shipped_configs_read_the_same_under_yaml_1_1_and_the_config_loader():
    """The config loader's YAML 1.2-style rules change how no shipped config or preset reads."""
    import yaml
    from importlib import resources
    root = resources.files("zeroskel") / "configs"
    files = [f for d in root.iterdir() for f in (d.iterdir() if d.is_dir() else [d]) if f.name.endswith(".yaml")]
    assert len(files) >= 10
    for f in files:
        assert C.safe_load(f.read_text(encoding="utf-8")) == yaml.safe_load(f.read_text(encoding="utf-8")), f.name


def test_one_integer_rule_for_config_keys_encoders_and_flora():
    """engine.config.check_int (epochs, seeds) refused 2.0 and 1e2 while _checks.whole (encoder
    widths, Flora's iterations) took them: one rule now, a whole float is its int (stored back, so
    the run's config.yaml holds 2) and a fraction is refused everywhere with the key named."""
    from zeroskel._checks import check_seed, whole
    from zeroskel.engine.pretrain import check_config as check_pretrain
    from zeroskel.methods.pgfa import check_config as check_pgfa
    from zeroskel.models.stgcn import STGCN

    cfg = C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5",
                         overrides=["train.epochs=2.0", "train.batch_size=1e2", "validation.every=2.0",
                                    "train.warmup_epochs=1.0", "data.limit_per_class=3.0"])
    check_pgfa(cfg)
    got = (cfg["train"]["epochs"], cfg["train"]["batch_size"], cfg["validation"]["every"],
           cfg["train"]["warmup_epochs"], cfg["data"]["limit_per_class"])
    assert got == (2, 100, 2, 1, 3) and all(type(x) is int for x in got)
    cfg = C.build_config("pretrain", dataset="utd_mhad", split="purls-22/5", overrides=["train.epochs=3.0"])
    check_pretrain(cfg)
    assert type(cfg["train"]["epochs"]) is int
    for method, check, item in (("pgfa", check_pgfa, "train.epochs=1.5"), ("pgfa", check_pgfa, "train.batch_size=2.5"),
                                ("pgfa", check_pgfa, "train.warmup_epochs=0.5"),
                                ("pgfa", check_pgfa, "data.limit_per_class=2.5"),
                                ("pretrain", check_pretrain, "train.epochs=1.5")):
        key, val = item.split("=")
        cfg = C.build_config(method, dataset="utd_mhad", split="purls-22/5", overrides=[item])
        with pytest.raises(ConfigError, match=re.escape(f"{key} must be an integer >= ") + ".*" + re.escape(f"got {val}")):
            check(cfg)
    assert whole("depth", 2.0) == 2 and check_seed(3.0, "--seed") == 3
    for bad in (1.5, float("nan"), True, "2"):
        with pytest.raises(ConfigError, match=f"depth must be an integer >= 1, got {re.escape(repr(bad))}"):
            whole("depth", bad)
    assert STGCN(in_channels=3.0).in_channels == 3


def test_a_key_given_twice_in_a_config_file_is_refused(tmp_path):
    """PyYAML keeps the last of two equal keys: a config file with two 'train:' sections silently
    lost the first one's epochs (the run trained the preset's 40)."""
    f = tmp_path / "two.yaml"
    f.write_text("train:\n  epochs: 3\nalignment:\n  alpha: 0.5\ntrain:\n  lr: 0.01\n")
    with pytest.raises(ConfigError, match=r"two\.yaml: invalid YAML \(line 5, column 1: key 'train' is given "
                                          r"twice \(also at line 1, column 1\); give it once\)"):
        C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", config=str(f))
    with pytest.raises(ConfigError, match=r"key 'c' is given twice"):
        C.parse_override("model.args={a: 1, b: {c: 1, c: 2}}")
    # a YAML merge key may be overridden, as YAML means it
    assert C.safe_load("b: &x {p: 1, q: 2}\nc:\n  <<: *x\n  p: 3\n")["c"] == {"p": 3, "q": 2}
    f.write_text("train:\n  epochs: 3\n  lr: 0.01\n")
    assert C.build_config("pgfa", dataset="utd_mhad", split="purls-22/5", config=str(f))["train"]["epochs"] == 3


def test_a_run_config_reads_back_as_written(tmp_path):
    """dump_config wrote the text '1e-4' bare, which the config loader reads as the number 1e-4:
    a run's config.yaml read back (evaluate, resume) held another value than the run had."""
    import yaml
    texts = {"a": "1e-4", "b": "-.5", "c": "010", "d": "yes", "e": "1:30", "f": "2024-01-01", "g": "=",
             "h": 10, "i": 1e-5, "j": True, "k": None, "l": [0.5, -3], "m": "x"}
    C.dump_config(texts, tmp_path / "c.yaml")
    assert C.load_yaml(tmp_path / "c.yaml") == texts == yaml.safe_load((tmp_path / "c.yaml").read_text())
    for method in ("pgfa", "pretrain"):   # a run config is written as before
        cfg = C.build_config(method, dataset="utd_mhad", split="purls-22/5")
        C.dump_config(cfg, tmp_path / "r.yaml")
        assert (tmp_path / "r.yaml").read_text() == yaml.safe_dump(cfg, sort_keys=False)


def test_a_last_step_that_overflows_the_weights_is_a_divergence(tmp_path):
    """The loss of every step is finite, but the last step's update overflows a weight: the epoch
    ends in TrainingDiverged and its checkpoint is not written (it used to be saved, and the run
    to end with a model of NaN / inf weights that failed later in evaluation)."""
    from zeroskel.engine.trainer import OptimConfig, Trainer, TrainingDiverged

    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)

    def step(m, batch):
        return (m(batch) * 1e3).sum(), 1  # finite loss, gradient 1e3

    tr = Trainer(model, step, lambda epoch, rng: [torch.ones(1, 1)],
                 OptimConfig(optimizer="sgd", lr=1e37, momentum=0.0, weight_decay=0.0, warmup_epochs=0, epochs=1),
                 checkpoint=tmp_path / "last.pt")
    with pytest.raises(TrainingDiverged, match=r"the weights \(weight\) are not finite after epoch 1 \(lr 1e\+37\)"):
        tr.fit()
    assert not (tmp_path / "last.pt").exists()
