"""Data-parallel training on CPU (gloo, two processes): the same gradients as one process, and a
PGFA run trained, interrupted and resumed by two processes together."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from conftest import need
from zeroskel.engine.distributed import SINGLE, World, gather_rows, shard, shutdown
from zeroskel.errors import ConfigError


def _join(rank: int, size: int, rendezvous: str) -> World:
    from zeroskel.engine.distributed import init_world

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    # a file rendezvous: a TCP port picked here could be taken by another test session first
    return init_world("cpu", init_method=f"file://{rendezvous}")


def _spawn(fn, *args, nprocs: int = 2) -> None:
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(fn, args=(nprocs, str(Path(d) / "rendezvous"), *args), nprocs=nprocs, join=True)


def test_shards_cover_the_batch_in_order():
    for n in (2, 7, 32):
        for size in (1, 2, 3):
            parts = [shard(n, World(r, size)) for r in range(size)]
            assert parts[0].start == 0 and parts[-1].stop == n
            assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))
            assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1
    x = torch.arange(6.0)
    assert gather_rows(x, 6, SINGLE) is x


# ------------------------------------------------------------------ the engine
class _Toy(nn.Module):
    """Features through a linear map; the loss also uses a learnable scale directly, the case
    where summing per-process gradients would count a parameter once per process."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Linear(5, 4)
        self.scale = nn.Parameter(torch.tensor(3.0))

    def forward(self, x):
        return self.proj(x)


def _toy_data():
    g = np.random.default_rng(0)
    return (g.normal(size=(12, 5)).astype(np.float32), g.integers(0, 3, size=12),
            torch.from_numpy(g.normal(size=(3, 4)).astype(np.float32)))


def _toy_train(world: World) -> dict:
    from zeroskel.engine.trainer import OptimConfig, Trainer
    from zeroskel.methods.pgfa.losses import multi_positive_kl_loss

    x, y, text = _toy_data()

    def batches(epoch, rng):
        perm = rng.permutation(len(y))
        for s in range(0, len(y), 6):  # global batches of 6, 3 rows per process
            idx = perm[s:s + 6]
            yield torch.from_numpy(x[idx][shard(len(idx), world)]), torch.from_numpy(y[idx])

    def step(model, batch):
        xb, yb = batch
        feats = gather_rows(model(xb), len(yb), world)
        return multi_positive_kl_loss(feats, text[yb], yb, model.scale, 10.0), len(yb)

    tr = Trainer(_Toy(), step, batches, OptimConfig(optimizer="sgd", lr=0.1, epochs=3, momentum=0.9,
                                                    weight_decay=0.0, warmup_epochs=0),
                 seed=1, device="cpu", world=world)
    tr.fit(resume=False)
    return {k: v.detach().clone() for k, v in tr.model.state_dict().items()}


def _toy_worker(rank, size, rendezvous, out):
    world = _join(rank, size, rendezvous)
    torch.save(_toy_train(world), Path(out) / f"rank{rank}.pt")
    shutdown()


def test_two_processes_give_the_one_process_update(tmp_path):
    _spawn(_toy_worker, str(tmp_path))
    torch.set_num_threads(1)
    one = _toy_train(SINGLE)
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        for k in one:
            torch.testing.assert_close(got[k], one[k], rtol=1e-5, atol=1e-6)
    assert not torch.equal(one["proj.weight"], _Toy().proj.weight.detach())  # it trained


# ------------------------------------------------------------------ a PGFA run
_QUICK = ["train.epochs=2", "train.batch_size=16", "validation.every=1", "train.threads=1",
          "train.ce_init_epochs=1"]  # the cross-entropy initialisation gathers logits, not features


def _run_worker(rank, size, rendezvous, runs_dir, data_root, mode, method="pgfa"):
    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import resume_run, train

    os.environ["ZEROSKEL_QUIET"] = "1"
    _join(rank, size, rendezvous)
    if mode == "resume":
        resume_run(next(Path(runs_dir).iterdir()), data_root=data_root)
    else:
        quick = _QUICK if method == "pgfa" else ["train.epochs=2", "train.threads=1"]
        cfg = build_config(method, dataset="utd_mhad", split="purls-22/5", seed=3, overrides=quick,
                           device="cpu", data_root=data_root)
        train(cfg, runs_dir, data_root=data_root, max_epochs=1 if mode == "interrupt" else None)
    shutdown()


def test_pgfa_trains_and_resumes_in_two_processes(data_root, tmp_path):
    need(data_root, "utd_mhad")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    _spawn(_run_worker, str(whole), str(data_root), "whole")
    _spawn(_run_worker, str(parts), str(data_root), "interrupt")
    (run,) = list(parts.iterdir())
    assert not (run / "metrics.json").exists() and not list(run.glob("rank*"))
    _spawn(_run_worker, str(parts), str(data_root), "resume")
    (full,) = list(whole.iterdir())
    assert not list(full.glob("rank*")) and not list(run.glob("rank*"))  # only process 0's files remain
    log = (full / "train.log").read_text()
    assert "(process 0 of 2, data-parallel)" in log
    a, b = torch.load(full / "final.pt"), torch.load(run / "final.pt")
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=0)  # exact resume
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (full, run))
    assert ma["zsl_top1"] == mb["zsl_top1"] and ma["test_samples"] == 80


def test_pretraining_trains_and_resumes_in_two_processes(data_root, tmp_path):
    """The cross-entropy pretraining of the feature pipeline, interrupted in stage 1 and resumed
    by two processes, ends with the encoder of an uninterrupted two-process run."""
    need(data_root, "utd_mhad")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    _spawn(_run_worker, str(whole), str(data_root), "whole", "pretrain")
    _spawn(_run_worker, str(parts), str(data_root), "interrupt", "pretrain")
    _spawn(_run_worker, str(parts), str(data_root), "resume", "pretrain")
    (a,), (b,) = list(whole.iterdir()), list(parts.iterdir())
    assert not list(a.glob("rank*")) and not list(b.glob("rank*"))
    ea, eb = torch.load(a / "encoder.pt"), torch.load(b / "encoder.pt")
    for part in ("encoder", "head"):
        for k in ea[part]:
            torch.testing.assert_close(ea[part][k], eb[part][k], rtol=0, atol=0)
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert ma["test_seen_acc_diag"] == mb["test_seen_acc_diag"]


def test_single_process_commands_refuse_torchrun(monkeypatch, capsys):
    from zeroskel.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["eval-features", "--method", "devise", "--features", "x.npz", "--text-bank", "y.npy"]) == 2
    assert "eval-features runs in one process; under torchrun only train, pretrain, resume" in capsys.readouterr().err
    from zeroskel.engine.benchmark import run_benchmark
    with pytest.raises(ConfigError, match="without torchrun, and spread jobs over processes with --shard"):
        run_benchmark("purls-small", [1], "never-created")
    assert not Path("never-created").exists()


def _cli_worker(rank, size, rendezvous, argv, err_dir):
    import sys

    import zeroskel.cli
    from zeroskel.cli import main

    # a process that wrongly waited for the follower would take 600 s: the tests' time bound then
    # tells the two apart on a loaded machine too (with 20 s a slow start was enough to fail them)
    zeroskel.cli.FOLLOWER_WAIT_S = 600.0
    os.environ["ZEROSKEL_QUIET"] = "1"
    _join(rank, size, rendezvous)  # the command finds its process group joined (as torchrun's env:// would)
    sys.stderr = open(Path(err_dir) / f"err{rank}.txt", "w", buffering=1)
    sys.exit(main(argv))


def test_a_failed_start_in_two_processes_leaves_no_folder_and_one_message(tmp_path, monkeypatch):
    """Both processes fail alike (no data root) after process 0 made the run folder: process 0
    removes it, rank folder included, so the retry gets the run's own name, and reports the
    error once; the other process waits to be ended instead of printing the same line."""
    import time

    runs, errs = tmp_path / "runs", tmp_path / "errs"
    errs.mkdir()
    argv = ["train", "--method", "pgfa", "--dataset", "utd_mhad", "--split", "purls-22/5", "--device", "cpu",
            "--runs-dir", str(runs), "--data-root", str(tmp_path / "no-data"), "--set", "train.threads=1"]
    t0 = time.monotonic()
    with pytest.raises(mp.ProcessExitedException, match="process 0 terminated with exit code 2"):
        _spawn(_cli_worker, argv, str(errs))
    assert time.monotonic() - t0 < 300  # ended with process 0, not after process 1's wait (FOLLOWER_WAIT_S)
    assert not runs.exists()
    assert (errs / "err0.txt").read_text().count("zeroskel train: error: data root") == 1
    assert (errs / "err1.txt").read_text() == ""


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message of a machine without CUDA")
def test_cuda_under_torchrun_without_a_gpu_says_cuda_is_not_available(monkeypatch):
    from zeroskel.engine.distributed import init_world

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(ConfigError, match=r"device 'cuda' requested but CUDA is not available \(use --device cpu"):
        init_world("cuda")


def test_a_batch_smaller_than_the_process_count_is_refused():
    """Three processes and train.batch_size 2: every batch would be skipped (each process needs a
    row of it), so the run would train nothing; train and resume refuse it before any work."""
    from zeroskel.engine.data import epoch_batches
    from zeroskel.engine.runs import check_world

    three = World(0, 3)
    assert list(epoch_batches(40, 2, False, np.random.default_rng(0), three)) == []  # what it would train
    assert len(list(epoch_batches(40, 3, False, np.random.default_rng(0), three))) == 13  # the last row alone is skipped
    with pytest.raises(ConfigError, match="train.batch_size is 2, fewer than the 3 processes .* at least 3"):
        check_world({"train": {"batch_size": 2}}, three)
    check_world({"train": {"batch_size": 3}}, three)
    check_world({"train": {"batch_size": 2}}, SINGLE)
    check_world({"train": {"batch_size": 2}}, World(1, 2))


def _tiny_custom(tmp_path) -> list[str]:
    """A 12-recording custom dataset (mine.npz, split.yaml, texts.txt in ``tmp_path``); returns the
    --set overrides of a PGFA run on it that takes seconds (a 2-block ST-GCN)."""
    from zeroskel.data.readers.custom import write_custom

    rng = np.random.default_rng(0)
    labels = [i % 3 for i in range(12)]
    seqs = [(np.sin(np.linspace(0, 3, 8))[:, None, None] * (1 + c) + 0.1 * rng.standard_normal((8, 25, 3)))
            .astype(np.float32) for c in labels]
    write_custom(tmp_path / "mine.npz", seqs, labels, ["wave", "clap", "jump"], "ntu25", name="mine",
                 partitions={"custom": ["train" if i < 9 else "test" for i in range(12)]})
    (tmp_path / "split.yaml").write_text("unseen: [jump]\n")
    (tmp_path / "texts.txt").write_text("wave a hand\nclap hands\njump up\n")
    return ["train.epochs=2", "train.warmup_epochs=0", "train.batch_size=4", "train.threads=1",
            "model.encoder=stgcn", "model.args={channels: [4, 8], strides: [1, 2]}", "model.input_frames=null",
            f"text.source={tmp_path / 'texts.txt'}", "text.segment_sources=null", "text.model=all-MiniLM-L6-v2",
            "data.pipeline=none", "eval.gzsl=false", "device=cpu", "validation.mode=none"]


def test_a_one_process_resume_removes_the_rank_folders_a_killed_run_left(tmp_path):
    """A two-process run killed mid-way keeps process 1's work folder (rank1/, copies of the
    checkpoints); README: a run resumes with any number of processes. Resumed by one process, the
    finished run holds only process 0's files, as after a two-process resume."""
    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import resume_run, train

    cfg = build_config("pgfa", dataset=str(tmp_path / "mine.npz"), split=str(tmp_path / "split.yaml"), seed=1,
                       overrides=_tiny_custom(tmp_path))
    cut = train(cfg, tmp_path / "runs", max_epochs=1)
    (cut / "rank1").mkdir()  # what process 1 of a killed two-process run leaves
    for f in ("stage2_last.pt", "train.log"):
        (cut / "rank1" / f).write_bytes((cut / f).read_bytes())
    (cut / "ranking.txt").write_text("a file of the user's, not a work folder")
    resume_run(cut)
    assert (cut / "final.pt").is_file() and not (cut / "rank1").exists()
    assert (cut / "ranking.txt").is_file()


def test_a_two_process_run_that_diverges_after_a_checkpoint(tmp_path):
    """Both processes diverge at the same step (the loss is the whole batch's): process 0 records
    diverged.json and reports it once; process 1's work folder goes (the run cannot be resumed)."""
    import time

    runs, errs = tmp_path / "runs", tmp_path / "errs"
    errs.mkdir()
    sets = _tiny_custom(tmp_path) + ["train.epochs=3", "train.schedule=step", "train.milestones=[1]",
                                     "train.gamma=1e30"]  # epoch 2 at lr 5e28
    argv = ["train", "--method", "pgfa", "--dataset", str(tmp_path / "mine.npz"), "--split",
            str(tmp_path / "split.yaml"), "--runs-dir", str(runs)] + [a for k in sets for a in ("--set", k)]
    t0 = time.monotonic()
    with pytest.raises(mp.ProcessExitedException, match="process 0 terminated with exit code 2"):
        _spawn(_cli_worker, argv, str(errs))
    assert time.monotonic() - t0 < 300  # ended with process 0, not after process 1's wait (FOLLOWER_WAIT_S)
    (run,) = list(runs.iterdir())
    assert sorted(p.name for p in run.iterdir()) == [".lock", "config.yaml", "diverged.json", "stage2_last.pt",
                                                     "train.log"]
    assert json.loads((run / "diverged.json").read_text())["epoch"] in (2, 3)
    assert (errs / "err0.txt").read_text().count("training diverged: ") == 1
    assert (errs / "err1.txt").read_text() == ""


def test_a_model_whose_features_overflow_says_so(tmp_path):
    """The last epoch at lr 5e28 leaves finite but huge weights whose features overflow: the run
    said 'prototype_alignment: features or anchors contain NaN/inf'; it now says which features
    are not finite and what to do."""
    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import train
    from zeroskel.errors import DataError

    cfg = build_config("pgfa", dataset=str(tmp_path / "mine.npz"), split=str(tmp_path / "split.yaml"), seed=1,
                       overrides=_tiny_custom(tmp_path) + ["train.schedule=step", "train.milestones=[1]",
                                                           "train.gamma=1e30"])
    with pytest.raises(DataError, match=r"the model's features are not finite \(NaN/inf\) for 1 of 1 recording "
                                        r"\(the first: row 0\): .*lower train.lr or with train.grad_clip"):
        train(cfg, tmp_path / "runs")
