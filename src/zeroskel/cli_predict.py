"""``zeroskel predict`` / ``render`` / ``export``: inference commands of the CLI.

Registered by :func:`add_commands` from :func:`zeroskel.cli.build_parser`; each command
parses its flags and calls :mod:`zeroskel.recognizer` /
:mod:`zeroskel.data.readers.anyfile` / :mod:`zeroskel.viz`, nothing more.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .errors import ConfigError, DataError
from .paths import new_output


def read_labels_file(path: str | Path) -> list[str]:
    """Candidate labels from a text file: one per line; blank lines and ``#`` comments skipped."""
    path = Path(path).expanduser()
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # a BOM (Notepad) is not label text
    except FileNotFoundError:
        raise ConfigError(f"--labels-file {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--labels-file {path}: unreadable ({e})") from None
    labels = [l.strip() for l in lines if l.strip() and not l.lstrip().startswith("#")]
    if not labels:
        raise ConfigError(f"--labels-file {path}: no labels (one label per line)")
    _no_duplicates(labels, f"--labels-file {path}")
    return labels


def _no_duplicates(labels: list[str], where: str) -> None:
    dup = sorted({l for l in labels if labels.count(l) > 1})
    if dup:
        raise ConfigError(f"{where}: duplicate labels {dup[:5]}; each candidate must appear once")


def _labels(a) -> list[str]:
    if a.labels is not None and a.labels_file is not None:
        raise ConfigError("give either --labels or --labels-file, not both")
    if a.labels_file is not None:
        return read_labels_file(a.labels_file)
    if a.labels is None:
        raise ConfigError("no candidate labels: pass --labels \"wave\" \"kick\" ... or --labels-file FILE")
    labels = [l.strip() for l in a.labels]
    if not labels or not all(labels):
        raise ConfigError("--labels: give at least one non-empty label")
    _no_duplicates(labels, "--labels")
    return labels


def format_prediction(pred, header: str | None = None) -> str:
    """A small text table of one :class:`~zeroskel.recognizer.Prediction`."""
    width = max([len("label")] + [len(l) for l in pred.labels])
    lines = [header or pred.source]
    if pred.true_label is not None:
        lines[0] += f"  (label in file: {pred.true_label})"
    lines.append(f"  {'rank':>4}  {'label':<{width}}  {'score':>6}  {'prob':>6}")
    for i, (l, s, p) in enumerate(zip(pred.labels, pred.scores, pred.probs), 1):
        lines.append(f"  {i:>4}  {l:<{width}}  {s:>6.3f}  {p:>6.3f}")
    return "\n".join(lines)


# ---------------------------------------------------------------- commands
def cmd_predict(a) -> int:
    from .recognizer import Recognizer

    labels = _labels(a)
    if a.json and a.json != "-":
        new_output(a.json, "--json", a.force)
    rec = Recognizer.load(a.model, device=a.device)
    recs = []
    for f in a.files:
        recs.extend(rec.recordings(f, layout=a.layout))
    if a.align and len(recs) < 2:
        raise ConfigError(f"--align adapts the label prototypes to a batch of recordings; {a.files[0]} "
                          "holds one recording: give several recordings, or leave --align out")
    preds = rec.predict(recs, labels, top_k=a.top_k, align=a.align)
    table = sys.stderr if a.json == "-" else sys.stdout  # stdout stays valid JSON for a pipe
    for i, p in enumerate(preds):
        if i:
            print(file=table)
        print(format_prediction(p, f"{p.source}  [{recs[i].layout}, {recs[i].length} frames]"), file=table)
    if a.json:
        out = {"model": str(a.model), "labels": labels, "top_k": a.top_k, "align": bool(a.align),
               "predictions": [p.to_dict() for p in preds]}
        text = json.dumps(out, indent=1)
        if a.json == "-":
            print(text)
        else:
            out = Path(a.json).expanduser()
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
            print(f"\nwrote {a.json}", file=sys.stderr)
    return 0


def cmd_render(a) -> int:
    from .data.readers.anyfile import load_recordings
    from .viz import render_animation

    if a.model is None and (a.labels is not None or a.labels_file is not None):
        raise ConfigError("--labels / --labels-file need --model MODEL")
    if a.fps < 1:
        raise ConfigError(f"--fps must be >= 1, got {a.fps}")
    out = new_output(a.out, "--out", a.force)
    if out.suffix.lower() != ".gif":
        raise ConfigError(f"--out {out}: the animation is written as a GIF; use a .gif file name")
    recs = load_recordings(a.file, layout=a.layout)
    n = len(recs)  # the library's messages say index=...; this command's flag is --index
    if a.index is None and n != 1:
        raise ConfigError(f"{a.file} holds {n} recordings; choose one with --index 0..{n - 1}")
    if a.index is not None and not -n <= a.index < n:
        raise ConfigError(f"--index {a.index}: {a.file} holds {n} recording{'s' if n != 1 else ''} "
                          f"(--index 0..{n - 1})")
    r = recs[a.index or 0]
    title = Path(r.source).name
    if a.model is not None:
        from .recognizer import Recognizer

        labels = _labels(a)
        pred = Recognizer.load(a.model, device=a.device).predict([r], labels, top_k=1)[0]
        title = f"{title}: {pred.label} ({pred.score:.2f})"
        print(format_prediction(pred))
    try:
        render_animation(r.data, r.length, r.layout, out, title=title, fps=a.fps)
    except ValueError as e:
        raise DataError(f"{a.file}: cannot render ({e})") from None
    print(f"wrote {out} ({r.length} frames, layout {r.layout})")
    return 0


def cmd_export(a) -> int:
    from .recognizer import export_bundle

    out = export_bundle(a.run_dir, a.out_dir, overwrite=a.force)
    print(f"exported {a.run_dir} -> {out}")
    return 0


def add_commands(subparsers, add) -> None:
    """Register ``predict``, ``render`` and ``export`` with :func:`zeroskel.cli.build_parser`'s
    ``add(name, fn, help)`` helper (``subparsers`` is accepted for symmetry)."""
    def label_args(sp, required_hint: str):
        sp.add_argument("--labels", nargs="+", metavar="LABEL",
                        help=f"candidate labels (free text, quote multi-word ones){required_hint}")
        sp.add_argument("--labels-file", metavar="FILE", help="candidate labels, one per line")
        sp.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
        sp.add_argument("--layout", help="joint layout of .npy/.npz arrays (default: from the joint "
                                         "count, 20 -> kinect_v1, 25 -> ntu25; utd_mhad: arrays in "
                                         "UTD-MHAD's .mat joint order)")

    sp = add("predict", cmd_predict, "rank free-text action labels for skeleton recordings")
    sp.add_argument("model", help="model bundle folder (zeroskel export) or a PGFA run directory")
    sp.add_argument("files", nargs="+", metavar="FILE",
                    help="recordings: .skeleton (NTU), .mat (UTD-MHAD), .json (NW-UCLA), .npy, .npz")
    label_args(sp, "")
    sp.add_argument("--top-k", type=int, default=5, help="labels shown per recording (default 5)")
    sp.add_argument("--json", metavar="OUT", help="also write the predictions as JSON here ('-': stdout, which then holds "
                         "only the JSON; the table goes to stderr)")
    sp.add_argument("--force", action="store_true", help="replace an existing --json file")
    sp.add_argument("--align", action="store_true",
                    help="prototype alignment over all given recordings (transductive; off by default). "
                         "With the bundle's balanced pseudo-labels (the small-dataset preset) it assumes "
                         "the recordings cover the labels about equally. The recordings are centred on one "
                         "mean; to centre each person separately (a bundle's alignment.center_by), use "
                         "Recognizer.predict(..., align=True, groups=...) in Python")

    sp = add("render", cmd_render, "draw a recording as an animated GIF (optionally with the predicted label)")
    sp.add_argument("file", help="a recording file (any predict format)")
    sp.add_argument("--out", required=True, help="output .gif")
    sp.add_argument("--model", help="model bundle: put its best label in the title")
    label_args(sp, " (with --model)")
    sp.add_argument("--index", type=int, help="sample of a multi-sample .npz/.npy file")
    sp.add_argument("--fps", type=int, default=15, help="frames per second (default 15)")
    sp.add_argument("--force", action="store_true", help="replace an existing --out file")

    sp = add("export", cmd_export, "export a finished PGFA run as a self-contained model bundle folder")
    sp.add_argument("run_dir", help="run directory (with final.pt)")
    sp.add_argument("out_dir", help="bundle folder to create")
    sp.add_argument("--force", action="store_true", help="replace an existing bundle at OUT_DIR")
