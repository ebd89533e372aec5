"""PKU-MMD part I and part II (Liu et al., "PKU-MMD: A Large Scale Benchmark for Continuous
Multi-Modal Human Action Understanding", ACM MM workshops 2017).

PKU-MMD ships continuous Kinect-v2 videos; each video is cut into its labelled action
segments, one sample per segment.

On-disk layout (as published)::

    part I  (<data_root>/pku_mmd1)            part II (<data_root>/pku_mmd2)
    Data/PKU_Skeleton_Renew/0002-L.txt        Data/skeleton/A01N01-L.txt
    Label/Train_Label_PKU_final/0002-L.txt    Label/A01N01-L.txt
    Split/cross-subject.txt                   Split/cross_subject_v2.txt
    Split/cross-view.txt                      Split/cross_view_v2.txt

* skeleton file: one frame per line, 150 whitespace-separated floats = 2 persons x 25 joints
  x (x, y, z), NTU-25 / Kinect-v2 joint order, metres; the second person is all zeros when
  absent.
* label file: one action per line, ``label,start,end,confidence``. ``label`` is the 1-based
  id of the part-I action list (part II uses the same ids, minus the 10 two-person ones);
  ``start``/``end`` are 0-based frame indices, ``end`` exclusive (segment = lines
  ``start .. end-1`` of the skeleton file, the ``[start:end]`` slicing of the widely used
  preprocessing scripts; starts of 0 occur, so ids are 0-based); ``confidence`` is 1
  (slight) or 2 (strong).
* split file: a ``Training videos:`` header line, the training video ids separated by
  commas, a ``Validataion videos:`` header (sic) and the held-out ids.

The file name gives the view: ``XXXX-V`` with V in L (left), M (middle), R (right); part II
names are ``AaaNnn-V`` where ``Nnn`` is the subject.

Output conventions are the NTU reader's: each segment is translated so that the spine-mid
joint (index 1) of person 1 in its first frame is the origin (absent persons stay zero),
data are (N, 3, max_frames, 25, 2) float32, longer segments are shortened with a logged
warning, and segments with no skeleton at all are skipped with a logged warning and listed
in ``info["skipped"]``.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..dataset import SkeletonDataset

log = logging.getLogger(__name__)

# Official action list (Actions.xlsx of the PKU-MMD release); index = label id - 1.
PKU_MMD1_CLASSES = [
    "bow", "brushing hair", "brushing teeth", "check time (from watch)", "cheer up",
    "clapping", "cross hands in front (say stop)", "drink water", "drop", "eat meal/snack",
    "falling", "giving something to other person", "hand waving", "handshaking",
    "hopping (one foot jumping)", "hugging other person", "jump up", "kicking other person",
    "kicking something", "make a phone call/answer phone", "pat on back of other person",
    "pickup", "playing with phone/tablet", "point finger at the other person",
    "pointing to something with finger", "punching/slapping other person",
    "pushing other person", "put on a hat/cap", "put something inside pocket", "reading",
    "rub two hands together", "salute", "sitting down", "standing up", "take off a hat/cap",
    "take off glasses", "take off jacket", "take out something from pocket",
    "taking a selfie", "tear up paper", "throw", "touch back (backache)",
    "touch chest (stomachache/heart pain)", "touch head (headache)", "touch neck (neckache)",
    "typing on a keyboard", "use a fan (with hand or paper)/feeling warm", "wear jacket",
    "wear on glasses", "wipe face", "writing",
]

# The 10 two-person (interaction) actions of part I, as 1-based part-I ids. Part II keeps
# the other 41 ("daily") actions and labels them with their part-I ids.
PKU_MMD_INTERACTION_IDS = (12, 14, 16, 18, 21, 24, 26, 27, 29, 38)
PKU_MMD2_IDS = tuple(i for i in range(1, 52) if i not in PKU_MMD_INTERACTION_IDS)
PKU_MMD2_CLASSES = [PKU_MMD1_CLASSES[i - 1] for i in PKU_MMD2_IDS]

NUM_PERSONS = 2
NUM_JOINTS = 25
VALUES_PER_FRAME = NUM_PERSONS * NUM_JOINTS * 3
SPINE_MID = 1  # NTU-25 joint used as the origin, as for NTU RGB+D
VIEWS = {"L": "left", "M": "middle", "R": "right"}

_PART1_NAME = re.compile(r"^(\d{4})-([LMR])$")
_PART2_NAME = re.compile(r"^A(\d+)N(\d+)-([LMR])$")
_TRAIN_HEAD = re.compile(r"^\s*training\s+videos\s*:", re.IGNORECASE)
# The release spells it "Validataion"; accept the correct spelling and "testing" too.
_VAL_HEAD = re.compile(r"^\s*(valid\w*|test\w*)\s+videos\s*:", re.IGNORECASE)


# ---------------------------------------------------------------------------- files
def read_pku_skeleton_file(path: str | Path) -> np.ndarray:
    """One PKU-MMD skeleton text file -> (T, 2, 25, 3) float32 (frames, persons, joints, xyz).

    Raises :class:`DataError` naming the file and the 1-based line for a line that does not
    hold exactly 150 numbers or holds NaN/inf, and for an empty file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: unreadable PKU-MMD skeleton file ({e})") from None
    text = text.rstrip()
    if not text:
        raise DataError(f"{path}: empty skeleton file (no frames)")
    n_lines = text.count("\n") + 1
    try:  # fast path: one C-level parse of the whole file
        flat = np.fromstring(text, dtype=np.float32, sep=" ")
    except ValueError:
        flat = None
    if flat is None or flat.size != n_lines * VALUES_PER_FRAME or not np.isfinite(flat).all():
        _locate_bad_line(path, text)  # raises with the line number
        flat = np.array(text.split(), dtype=np.float32)  # pragma: no cover - defensive
    return flat.reshape(n_lines, NUM_PERSONS, NUM_JOINTS, 3)


def _locate_bad_line(path: Path, text: str) -> None:
    for i, line in enumerate(text.split("\n"), 1):
        tokens = line.split()
        if len(tokens) != VALUES_PER_FRAME:
            raise DataError(f"{path}, line {i}: {len(tokens)} values, expected "
                            f"{VALUES_PER_FRAME} (2 persons x 25 joints x 3)")
        try:
            vals = np.array(tokens, dtype=np.float64)
        except ValueError:
            bad = next(t for t in tokens if not _is_float(t))
            raise DataError(f"{path}, line {i}: {bad!r} is not a number") from None
        if not np.isfinite(vals).all():
            j = int(np.flatnonzero(~np.isfinite(vals))[0])
            raise DataError(f"{path}, line {i}: non-finite value {tokens[j]!r} (value {j + 1})")
    raise DataError(f"{path}: could not parse the skeleton file")  # pragma: no cover


def _is_float(tok: str) -> bool:
    try:
        float(tok)
        return True
    except ValueError:
        return False


def read_pku_labels(path: str | Path) -> np.ndarray:
    """One PKU-MMD label file -> (K, 4) int64 rows ``(label, start, end, confidence)``.

    Values are as in the file: 1-based label ids, 0-based ``start``, exclusive ``end``.
    Blank lines are skipped. Raises :class:`DataError` naming file and line for a line
    without 4 integers, a negative start or an empty range (``end <= start``).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: unreadable PKU-MMD label file ({e})") from None
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
        if len(parts) != 4:
            raise DataError(f"{path}, line {i}: {len(parts)} values, expected 4 "
                            "(label,start,end,confidence)")
        try:
            label, start, end, conf = (int(p) for p in parts)
        except ValueError:
            raise DataError(f"{path}, line {i}: {line.strip()!r} is not 4 integers") from None
        if start < 0 or end <= start:
            raise DataError(f"{path}, line {i}: frame range start={start}, end={end} is empty "
                            "or negative (need 0 <= start < end)")
        rows.append((label, start, end, conf))
    if not rows:
        raise DataError(f"{path}: no labelled actions")
    return np.array(rows, dtype=np.int64)


def read_pku_split(path: str | Path) -> tuple[list[str], list[str]]:
    """Parse an official split file -> (training video ids, validation/test video ids)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: unreadable split file ({e})") from None
    lists: dict[str, list[str]] = {}
    current = None
    for line in lines:
        if _TRAIN_HEAD.match(line):
            current, line = "train", _TRAIN_HEAD.sub("", line)
            lists.setdefault(current, [])
        elif _VAL_HEAD.match(line):
            current, line = "test", _VAL_HEAD.sub("", line)
            lists.setdefault(current, [])
        ids = [t for t in re.split(r"[,\s]+", line.strip()) if t]
        if ids and current is None:
            raise DataError(f"{path}: video ids before a 'Training videos:' header")
        if current is not None:
            lists[current].extend(ids)
    for part, head in (("train", "Training videos:"), ("test", "Validataion videos:")):
        if not lists.get(part):
            raise DataError(f"{path}: no '{head}' section with video ids")
    both = set(lists["train"]) & set(lists["test"])
    if both:
        raise DataError(f"{path}: videos listed as both training and validation: "
                        f"{sorted(both)[:5]}")
    return lists["train"], lists["test"]


# ---------------------------------------------------------------------------- datasets
def read_pku_mmd1(folder: str | Path, progress: bool = True, max_frames: int | None = 300,
                  long_mode: str = "truncate", workers: int = 1) -> SkeletonDataset:
    """Read PKU-MMD part I: 51 classes, partitions ``xsub`` and ``xview``.

    Args:
        folder: the part-I root (``Data/``, ``Label/``, ``Split/`` inside).
        progress: show a progress bar.
        max_frames: output length T (zero padded, as the NTU reader); longer segments are
            shortened with a logged warning. ``None``: T = the longest segment.
        long_mode: ``"truncate"`` (keep the first ``max_frames`` frames, the NTU reader's
            rule) or ``"resample"`` (uniform temporal subsampling over the whole segment).
        workers: processes parsing the text files (parsing is CPU-bound; 1 = in-process).

    Partitions come from ``Split/cross-subject.txt`` and ``Split/cross-view.txt``. Without
    the cross-view file the paper's view rule is used (left view held out); without the
    cross-subject file there is no ``xsub`` partition (video ids do not encode the subject).
    Both fallbacks are logged and recorded in ``info["partition_sources"]``.
    """
    return _read_part(Path(folder), part=1, progress=progress, max_frames=max_frames,
                      long_mode=long_mode, workers=workers)


def read_pku_mmd2(folder: str | Path, progress: bool = True, max_frames: int | None = 300,
                  long_mode: str = "truncate", workers: int = 1) -> SkeletonDataset:
    """Read PKU-MMD part II: 41 classes (part I minus the 10 interactions), ``xsub``/``xview``.

    Same output conventions and arguments as :func:`read_pku_mmd1`.

    Labels in the files are part-I ids; they are mapped to 0..40 in part-I order
    (``PKU_MMD2_IDS``); ``meta["action_id"]`` keeps the file's id. Partitions come from
    ``Split/cross_subject_v2.txt`` / ``Split/cross_view_v2.txt``; without them the fallbacks
    are subjects N02, N03, N07 held out (``xsub``) and the left view held out (``xview``),
    logged and recorded in ``info["partition_sources"]``.
    """
    return _read_part(Path(folder), part=2, progress=progress, max_frames=max_frames,
                      long_mode=long_mode, workers=workers)


_LAYOUT = {
    1: dict(name="pku_mmd1",
            skeleton=("Data/PKU_Skeleton_Renew", "Data/skeleton", "skeleton", "Skeleton"),
            label=("Label/Train_Label_PKU_final", "Label", "label"),
            xsub=("cross-subject.txt", "cross_subject.txt"),
            xview=("cross-view.txt", "cross_view.txt")),
    2: dict(name="pku_mmd2",
            skeleton=("Data/skeleton", "Data/PKU_Skeleton_Renew", "skeleton", "Skeleton"),
            label=("Label", "Label/Train_Label_PKU_final", "label"),
            xsub=("cross_subject_v2.txt", "cross-subject_v2.txt"),
            xview=("cross_view_v2.txt", "cross-view_v2.txt")),
}
# Fallback cross-subject rule of part II: the subjects (Nnn) of the published validation list.
PKU_MMD2_TEST_SUBJECTS = (2, 3, 7)
FALLBACK_TEST_VIEW = "L"


def _find_dir(root: Path, candidates, what: str) -> Path:
    for c in candidates:
        p = root / c
        if p.is_dir() and any(p.glob("*.txt")):
            return p
    raise DataError(f"{root}: no {what} folder with .txt files; looked for "
                    + ", ".join(str(root / c) for c in candidates))


def _find_split(root: Path, names) -> Path | None:
    for n in names:
        for p in (root / "Split" / n, root / n):
            if p.is_file():
                return p
    return None


def _read_part(root: Path, part: int, progress: bool, max_frames: int | None,
               long_mode: str, workers: int) -> SkeletonDataset:
    if long_mode not in ("resample", "truncate"):
        from ...errors import unknown_name
        raise unknown_name("long-sequence mode", long_mode, ["resample", "truncate"])
    if max_frames is not None and max_frames < 1:
        raise DataError(f"max_frames must be >= 1 or None, got {max_frames}")
    spec = _LAYOUT[part]
    if not root.is_dir():
        raise DataError(f"PKU-MMD part {part}: folder {root} not found")
    skel_dir = _find_dir(root, spec["skeleton"], "skeleton")
    label_dir = _find_dir(root, spec["label"], "label")
    name_re = _PART1_NAME if part == 1 else _PART2_NAME
    files = sorted(p for p in skel_dir.glob("*.txt"))
    bad = [p.name for p in files if not name_re.match(p.stem)]
    if bad:
        form = "XXXX-V.txt" if part == 1 else "AaaNnn-V.txt"
        raise DataError(f"{skel_dir}: file name {bad[0]!r} is not {form} (V in L/M/R)")
    if not files:  # pragma: no cover - _find_dir guarantees files
        raise DataError(f"{skel_dir}: no skeleton files")

    id_to_label = ({i: i - 1 for i in range(1, 52)} if part == 1
                   else {a: k for k, a in enumerate(PKU_MMD2_IDS)})
    class_names = list(PKU_MMD1_CLASSES if part == 1 else PKU_MMD2_CLASSES)

    # pass 1: every label file (cheap), so the output is allocated once, not stacked
    label_rows = {}
    for skel_path in files:
        label_path = label_dir / skel_path.name
        if not label_path.is_file():
            raise DataError(f"{skel_path}: no label file {label_path}")
        rows = read_pku_labels(label_path)
        line_no = _label_line_numbers(label_path)
        for k, action in enumerate(rows[:, 0]):
            if action not in id_to_label:
                valid = "1..51" if part == 1 else "the 41 part-II ids " + str(list(PKU_MMD2_IDS))
                raise DataError(f"{label_path}, line {line_no[k]}: action id {action} is not "
                                f"one of {valid}")
        label_rows[skel_path] = (label_path, rows, line_no)
    n_max = sum(len(r) for _, r, _ in label_rows.values())
    longest = max(int((r[:, 2] - r[:, 1]).max()) for _, r, _ in label_rows.values())
    t_out = longest if max_frames is None else max_frames  # NTU convention: T = max_frames
    data = np.zeros((n_max, 3, t_out, NUM_JOINTS, NUM_PERSONS), dtype=np.float32)
    lengths = np.zeros(n_max, dtype=np.int64)

    # pass 2: skeletons, cut into segments written straight into ``data``
    labels, meta_rows, skipped, n_long, n, past_end = [], [], [], 0, 0, []
    jobs = [(p, *label_rows[p], t_out, long_mode) for p in files]
    pool = None
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor
        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(_cut_video, jobs, chunksize=4)
    else:
        results = map(_cut_video, jobs)
    if progress:
        from ..._progress import progress as bar
        results = bar(results, desc=f"read {spec['name']}", total=len(files))
    try:
        for (skel_path, label_path, rows, line_no, _, _), (segments, cut) in zip(jobs, results):
            video = skel_path.stem
            past_end += [f"{label_path.name} line {line_no[k]} (end {int(rows[k][2])} -> {e})" for k, e in cut.items()]
            for k, seg in enumerate(segments):
                if seg is None:
                    skipped.append(f"{video}#{k}")
                    continue
                action, start, end, conf = (int(v) for v in rows[k])
                end = cut.get(k, end)
                n_long += end - start > t_out
                data[n, :, :seg.shape[1]] = seg.transpose(3, 1, 2, 0)
                lengths[n] = seg.shape[1]
                n += 1
                labels.append(id_to_label[action])
                meta_rows.append((skel_path.name, video, video[-1], start, end, conf, action, k,
                                  _subject(video, part)))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if past_end:
        log.warning("%s: %d label(s) end after the last skeleton frame and were cut to the video's "
                    "length (first: %s)", spec["name"], len(past_end), ", ".join(past_end[:3]))
    if skipped:
        log.warning("%s: %d labelled segment(s) have no skeleton at all and were skipped "
                    "(first: %s)", spec["name"], len(skipped), ", ".join(skipped[:5]))
    if n_long:
        log.warning("%s: %d segment(s) longer than %d frames were %s to %d frames",
                    spec["name"], n_long, t_out,
                    "uniformly resampled" if long_mode == "resample" else "truncated", t_out)
    if n == 0:
        raise DataError(f"{root}: no non-empty labelled segments")
    if n < n_max:
        data, lengths = data[:n], lengths[:n]
    cols = list(zip(*meta_rows))
    meta = {"file": np.array(cols[0]), "video": np.array(cols[1]), "view": np.array(cols[2]),
            "start": np.array(cols[3]), "end": np.array(cols[4]),
            "confidence": np.array(cols[5]), "action_id": np.array(cols[6]),
            "segment": np.array(cols[7])}
    if part == 2:
        meta["subject"] = np.array(cols[8])
    partitions, sources = _partitions(root, part, spec, meta)
    return SkeletonDataset(
        name=spec["name"], layout="ntu25", class_names=class_names, data=data,
        lengths=lengths, labels=np.array(labels), meta=meta, partitions=partitions,
        info={"source": str(root), "units": "metres, camera space",
              "centred_on": "spine_mid of the first frame of each segment",
              "frame_range": "0-based start, exclusive end",
              "max_frames": max_frames, "long_mode": long_mode, "shortened": n_long,
              "skipped": skipped, "partition_sources": sources},
    )


def _cut_video(job) -> tuple[list[np.ndarray | None], dict[int, int]]:
    """Read one video and cut it: per label row a centred (M, T<=t_out, V, 3) segment, or
    ``None`` for a segment without any skeleton; and {row: end frame used} for the rows whose
    end ran past the video and was cut to its length. Top-level so worker processes can run it."""
    skel_path, label_path, rows, line_no, t_out, long_mode = job
    skel = read_pku_skeleton_file(skel_path)
    n_frames = skel.shape[0]
    out, cut = [], {}
    for k, (_, start, end, _) in enumerate(rows):
        if start >= n_frames:
            raise DataError(f"{label_path}, line {line_no[k]}: frame range {start}..{end} starts "
                            f"after the video ({n_frames} frames in {skel_path.name})")
        if end > n_frames:  # a label that runs past the last frame: keep the frames there are
            end = cut[k] = n_frames
        seg = skel[start:end].transpose(1, 0, 2, 3)  # (M, T, V, 3)
        if not seg.any():
            out.append(None)
            continue
        if seg.shape[1] > t_out:
            seg = _shorten(seg, t_out, long_mode)
        out.append(_centre(seg))
    return out, cut


def _label_line_numbers(path: Path) -> list[int]:
    """1-based line number of each non-blank line, to name lines in errors."""
    return [i for i, l in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if l.strip()]


def _subject(video: str, part: int) -> int:
    if part == 2:
        return int(_PART2_NAME.match(video).group(2))
    return -1  # part I video ids do not encode the subject


def _shorten(seg: np.ndarray, max_frames: int, mode: str) -> np.ndarray:
    """(M, T, V, 3) -> (M, max_frames, V, 3) by uniform resampling or truncation."""
    if mode == "truncate":
        return seg[:, :max_frames]
    idx = np.round(np.linspace(0, seg.shape[1] - 1, max_frames)).astype(np.int64)
    return seg[:, idx]


def _centre(seg: np.ndarray) -> np.ndarray:
    """Subtract the spine-mid of person 0 in its first present frame; absent persons stay 0.

    seg: (M, T, V, 3) float32, a person-frame of all zeros means "not detected".
    """
    present = seg.any(axis=(2, 3))  # (M, T)
    frames = np.flatnonzero(present[0])
    if frames.size == 0:  # only the second slot is filled: use it as reference
        frames = np.flatnonzero(present[1])
        origin = seg[1, frames[0], SPINE_MID]
    else:
        origin = seg[0, frames[0], SPINE_MID]
    out = seg - origin
    out[~present] = 0.0
    return out.astype(np.float32, copy=False)


def _partitions(root: Path, part: int, spec: dict, meta: dict):
    videos = meta["video"]
    partitions: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for key in ("xsub", "xview"):
        path = _find_split(root, spec[key])
        if path is not None:
            train, test = read_pku_split(path)
            train, test = set(train), set(test)
            missing = sorted(str(v) for v in set(videos.tolist()) - train - test)
            if missing:
                raise DataError(f"{path}: video(s) {missing[:5]} are in neither the training "
                                f"nor the validation list ({len(missing)} in all)")
            partitions[key] = np.array([v in train for v in videos])
            sources[key] = str(path)
            continue
        looked = ", ".join(spec[key])
        if key == "xview":
            partitions[key] = meta["view"] != FALLBACK_TEST_VIEW
            sources[key] = f"fallback: no {looked}; view {FALLBACK_TEST_VIEW} held out"
        elif part == 2:
            partitions[key] = ~np.isin(meta["subject"], PKU_MMD2_TEST_SUBJECTS)
            sources[key] = (f"fallback: no {looked}; subjects "
                            f"{', '.join(f'N{s:02d}' for s in PKU_MMD2_TEST_SUBJECTS)} held out")
        else:
            sources[key] = f"absent: no {looked}; part I video ids do not encode the subject"
            log.warning("%s: no cross-subject split file (%s) under %s/Split: the 'xsub' "
                        "partition is not available", spec["name"], looked, root)
            continue
        log.warning("%s: partition %r from a fallback rule (%s)", spec["name"], key,
                    sources[key])
    return partitions, sources
