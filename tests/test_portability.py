"""Portability: what differs on a user's Windows or macOS laptop, checked on Linux.

* Text files: ``open()`` / ``Path.read_text`` without ``encoding=`` use the locale's encoding,
  cp1252 on most Windows machines, so UTF-8 class names, file names and config comments were
  read as mojibake (or failed), and a bundle README with a class name outside cp1252 could not
  be written. A subprocess with an ASCII locale (``LC_ALL=C``, UTF-8 mode off) fails the same
  way wherever an encoding is missing.
* Windows cannot rename or delete a file, or a folder holding one, while a process has it open
  or memory-mapped (prepared datasets are memory-mapped). The ``windows_files`` fixture makes
  this process's own open and mapped files behave that way on Linux (from /proc/self).
"""
from __future__ import annotations

import ast
import gc
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zeroskel.data.cache import clear_prepared, list_prepared, prepare
from zeroskel.data.dataset import SkeletonDataset
from zeroskel.errors import DataError

SRC = Path(__file__).resolve().parents[1] / "src" / "zeroskel"


def _text_io_without_encoding(tree: ast.AST) -> list[int]:
    """Line numbers of text-mode open()/read_text()/write_text() calls that pass no encoding."""
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        kws = {k.arg for k in node.keywords}
        if "encoding" in kws:
            continue
        if isinstance(f, ast.Attribute) and f.attr in ("read_text", "write_text"):
            bad.append(node.lineno)
            continue
        is_open = (isinstance(f, ast.Name) and f.id == "open") or (
            isinstance(f, ast.Attribute) and f.attr == "open"
            and not (isinstance(f.value, ast.Name) and f.value.id == "os"))
        if not is_open:
            continue
        args = node.args[1:] if isinstance(f, ast.Name) else node.args
        mode = next((k.value for k in node.keywords if k.arg == "mode"), args[0] if args else None)
        if isinstance(f, ast.Attribute) and mode is not None and not isinstance(mode, ast.Constant):
            continue  # zipfile.open(member), not a path's open(mode)
        text = mode is None or (isinstance(mode, ast.Constant) and "b" not in str(mode.value))
        if text:
            bad.append(node.lineno)
    return bad


def test_every_text_file_is_read_and_written_as_utf8():
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        for line in _text_io_without_encoding(ast.parse(path.read_text(encoding="utf-8"))):
            missing.append(f"{path.relative_to(SRC.parent)}:{line}")
    assert not missing, "text file I/O without encoding= (the locale's, cp1252 on Windows): " + \
        ", ".join(missing)


def test_the_lint_sees_a_missing_encoding():
    tree = ast.parse("open(p)\nopen(p, 'rb')\nP.read_text()\nP.write_text(s, encoding='utf-8')\n"
                     "q.open('x')\nzf.open(member)\nos.open(p, 1)\nopen(p, 'w', newline='')\n")
    assert _text_io_without_encoding(tree) == [1, 3, 5, 8]


def _run_ascii_locale(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONUTF8"))}
    env = {k: v for k, v in env.items() if k != "PYTHONIOENCODING"}  # stdout in the locale's encoding
    # src, and the tests folder for conftest's fixtures-as-functions (save_tiny_bundle)
    env.update(LC_ALL="C", PYTHONUTF8="0", PYTHONPATH=os.pathsep.join([str(SRC.parent), str(Path(__file__).parent)]))
    script = tmp_path / "check.py"  # a file: a non-ASCII command line does not survive LC_ALL=C
    script.write_text(code, encoding="utf-8")
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=120)


def test_custom_dataset_and_config_with_non_ascii_text_under_a_non_utf8_locale(tmp_path):
    # (file names stay ASCII: under LC_ALL=C Python cannot name such a file at all, unlike Windows)
    # a dataset whose class names are not ASCII, written by write_custom and read back,
    # a meta.json written by hand as UTF-8 (with the BOM that Windows editors add) and a
    # config with an accented comment, all in a process whose locale encoding is ASCII
    code = r'''
import json, numpy as np
from pathlib import Path
from zeroskel.data.readers.custom import write_custom, read_custom
from zeroskel.engine.config import load_yaml
rng = np.random.default_rng(0)
seqs = [rng.normal(size=(8, 20, 3)).astype(np.float32) for _ in range(4)]
names = ["café au lait", "挥手"]
write_custom("ds", seqs, [0, 1, 0, 1], names, "kinect_v1")
assert json.loads(Path("ds/meta.json").read_bytes().decode("utf-8"))["class_names"] == names
ds = read_custom("ds")
assert list(ds.class_names) == names, ds.class_names
meta = json.loads(Path("ds/meta.json").read_bytes())
Path("ds/meta.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(meta, ensure_ascii=False).encode("utf-8"))
Path("ds/labels.csv").write_bytes(b"\xef\xbb\xbf" + Path("ds/labels.csv").read_bytes())
assert list(read_custom("ds").class_names) == names
Path("c.yaml").write_bytes("# réglages du modèle\ntrain:\n  epochs: 2\n".encode("utf-8"))
assert load_yaml("c.yaml") == {"train": {"epochs": 2}}
print("ok")
'''
    r = _run_ascii_locale(code, tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]


def test_bundle_with_a_class_name_outside_the_locale_encoding_saves_loads_and_predicts(tmp_path):
    # README.md lists the seen class names: written in the locale's encoding, a name outside
    # cp1252 ended 'zeroskel export' / Recognizer.save in a UnicodeEncodeError on Windows; and
    # 'zeroskel predict ... > out.txt' (stdout in cp1252 there) ended in one after scoring
    code = r'''
import numpy as np
from conftest import save_tiny_bundle
from zeroskel.recognizer import Recognizer
out = save_tiny_bundle("bundle", ["挥手", "café"])
assert "挥手" in (out / "README.md").read_bytes().decode("utf-8")
assert Recognizer.load(out).card["training"]["seen_classes"] == ["挥手"]
# 'zeroskel predict' prints the ranking table: a label the output encoding cannot show is escaped
np.save("rec.npy", np.random.default_rng(0).normal(size=(30, 20, 3)).astype(np.float32) * 0.3)
open("labels.txt", "w", encoding="utf-8").write("挥手\ncafé\nkick\n")
from zeroskel.cli import main
assert main(["predict", "bundle", "rec.npy", "--labels-file", "labels.txt"]) == 0
assert len(open("labels.txt", encoding="utf-8").read().split()) == 3
print("ok")
'''
    r = _run_ascii_locale(code, tmp_path)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]
    ranked = re.findall(r"^ +[123] +(\S+) ", r.stdout, re.M)
    assert sorted(ranked) == sorted(["\\u6325\\u624b", "caf\\xe9", "kick"]), r.stdout


def _in_use() -> set[str]:
    """Files this process has open or memory-mapped (Linux /proc)."""
    paths = set()
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].startswith("/") and not parts[5].startswith("/dev/"):
                paths.add(parts[5].strip().removesuffix(" (deleted)"))
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/") and not target.startswith("/dev/"):
            paths.add(target)
    return paths


@pytest.fixture()
def windows_files(monkeypatch):
    """os.rename / os.replace / os.unlink refuse, as Windows does, a path that is (or holds) a
    file this process has open or memory-mapped."""
    if not os.path.exists("/proc/self/maps"):
        pytest.skip("needs Linux /proc")

    def guard(fn):
        def call(src, *args, **kw):
            fd = kw.get("dir_fd", kw.get("src_dir_fd"))  # shutil.rmtree names files in an open folder
            base = os.readlink(f"/proc/self/fd/{fd}") if fd is not None else ""
            real = os.path.realpath(os.path.join(base, os.fsdecode(src)))
            if any(b == real or b.startswith(real + os.sep) for b in _in_use()):
                raise PermissionError(13, "The process cannot access the file because it is being "
                                          "used by another process", str(src))
            return fn(src, *args, **kw)
        return call
    for name in ("rename", "replace", "unlink"):
        monkeypatch.setattr(os, name, guard(getattr(os, name)))


def _tiny() -> SkeletonDataset:
    rng = np.random.default_rng(0)
    return SkeletonDataset(name="tiny", layout="kinect_v1", class_names=["a", "b"],
                           data=rng.normal(size=(6, 3, 8, 20, 1)).astype(np.float32),
                           lengths=np.full(6, 8), labels=np.arange(6) % 2, info={"fingerprint": "t1"})


def test_the_windows_fixture_refuses_a_mapped_file(tmp_path, windows_files):
    np.save(tmp_path / "a.npy", np.zeros(4, np.float32))
    a = np.load(tmp_path / "a.npy", mmap_mode="r")
    with pytest.raises(PermissionError):
        (tmp_path / "a.npy").unlink()
    with pytest.raises(PermissionError):
        tmp_path.rename(tmp_path.with_name("moved"))
    del a
    (tmp_path / "a.npy").unlink()


def test_prepared_dataset_in_use_is_neither_cleared_nor_rebuilt_with_a_traceback(tmp_path, windows_files):
    # on Windows 'zeroskel cache clear' (or prepare(rebuild=True)) while a notebook or training
    # still had the dataset memory-mapped ended in a PermissionError traceback from a rename
    ds = prepare(_tiny(), "none", cache_dir=tmp_path, progress=False)
    folder = Path(ds.info["cache_path"])
    with pytest.raises(DataError, match=f"cache clear: {folder} not removed, a file in it is open"):
        clear_prepared(tmp_path)
    with pytest.raises(DataError, match=f"{folder}: cannot rebuild the prepared dataset, a file in it is open"):
        prepare(_tiny(), "none", cache_dir=tmp_path, progress=False, rebuild=True)
    assert [d["path"] for d in list_prepared(tmp_path)] == [str(folder)]  # intact and still served
    assert prepare(_tiny(), "none", cache_dir=tmp_path, progress=False).info["cache_path"] == str(folder)
    assert not [p for p in (tmp_path / "prepared").iterdir() if p != folder]  # no temporary left
    del ds
    gc.collect()
    assert prepare(_tiny(), "none", cache_dir=tmp_path, progress=False, rebuild=True).info["cache_path"] \
        == str(folder)
    gc.collect()
    assert clear_prepared(tmp_path) == [folder] and not folder.exists()


def test_windows_style_paths_are_paths():
    # 'zeroskel train --dataset C:\Users\me\data\mine_set' (a folder) named its runs
    # 'pgfa-C_Users_me_data_mine_set-...' because only '/' marked a path, and a missing
    # 'data\mine_set' or '--config configs\my_run' was reported as an unknown dataset/preset name
    from zeroskel.data.registry import is_custom, read_dataset
    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import run_name
    from zeroskel.errors import ConfigError
    from zeroskel.paths import looks_like_path, path_name

    assert run_name("pgfa", r"C:\Users\me\data\mine_set", "purls-22/5", 1) == "pgfa-mine_set-purls-22_5-seed1"
    assert run_name("pgfa", r"..\pool\mine.npz", r"D:\splits\my split.yaml", 0) == "pgfa-mine-my_split-seed0"
    assert run_name("pgfa", "data/mine_set", "purls-22/5", 2) == "pgfa-mine_set-purls-22_5-seed2"
    assert run_name("pgfa", "utd_mhad", "purls-22/5", 0) == "pgfa-utd_mhad-purls-22_5-seed0"
    assert path_name("C:\\data\\mine.npz") == "mine.npz" and path_name("a/b/") == "b"
    assert looks_like_path("data\\mine") and not looks_like_path("utd_mhad")
    assert is_custom("data\\mine_set") and not is_custom("ntu60")
    with pytest.raises(DataError, match=r"data\\mine_set: custom dataset not found"):
        read_dataset("data\\mine_set")
    with pytest.raises(ConfigError, match=r"config file configs\\my_run: cannot read"):
        build_config("pgfa", config="configs\\my_run")



def test_interrupted_prepare_leaves_no_temporary_folder_where_mapped_files_cannot_be_deleted(
        tmp_path, windows_files):
    # on Windows the scratch memmaps, still mapped by the traceback's frames, could not be
    # deleted, so every interrupted prepare (Ctrl-C, an error) left its temporary folder behind
    # (GBs for NTU) until 'zeroskel cache clear' an hour later
    from test_cache import _FailOnSecondChunk
    from zeroskel.data.transforms import Compose

    with pytest.raises(KeyboardInterrupt):
        prepare(_tiny(), Compose([_FailOnSecondChunk(KeyboardInterrupt())]), cache_dir=tmp_path, progress=False,
                chunk_size=2)
    assert list((tmp_path / "prepared").iterdir()) == []
