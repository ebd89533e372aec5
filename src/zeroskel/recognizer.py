"""Recognise actions in new recordings with free-text labels: the toolkit's front door.

A trained model travels as a self-contained *bundle* folder (a model is a folder you can
copy anywhere and load, sentence-transformers style)::

    my-model/
      bundle.json   # the card: format version, versions, encoder + constructor args,
                    # dimensions, joint layout, frames, preprocessing pipeline, text model
                    # and its checksum, temperature, alignment settings, training record
      weights.pt    # torch.save of the model's state dict (tensors only)
      README.md     # a human-readable summary of the card

Typical use::

    from zeroskel import Recognizer                     # or zeroskel.recognizer
    rec = Recognizer.load("my-model", device="cpu")
    preds = rec.predict(["a2_s1_t1_skeleton.mat", "clip.npy"], labels=["wave", "kick", "clap"])
    preds[0].label, preds[0].score                      # best label, its cosine similarity

Loading needs neither the training code path nor the dataset: the encoder is rebuilt from
its name and constructor arguments, the preprocessing from its transform configs, and
label texts are embedded with the recorded sentence model (offline), whose weights must
have the recorded checksum. Label embeddings are cached in memory and on disk
(:class:`zeroskel.text.cache.EmbeddingCache`, shared with training).

Export a trained PGFA run with :func:`export_bundle` (``zeroskel export RUN_DIR OUT_DIR``)
or ``Recognizer.from_run(run_dir).save(out_dir)``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ._checks import as_whole, whole, whole_numbers
from .errors import CheckpointError, ConfigError, DataError
from .methods.alignment import ALIGN_DEFAULTS as _ALIGN_DEFAULTS

log = logging.getLogger(__name__)

__all__ = ["Recognizer", "Prediction", "export_bundle", "read_bundle_card", "BUNDLE_FORMAT",
           "BUNDLE_VERSION", "CARD_FILE", "WEIGHTS_FILE"]

BUNDLE_FORMAT = "zeroskel.bundle"
# Bump when a bundle written by this version cannot be read correctly by an older reader.
BUNDLE_VERSION = 1
CARD_FILE = "bundle.json"
WEIGHTS_FILE = "weights.pt"
README_FILE = "README.md"
_REQUIRED = ("method", "model", "layout", "input_layout", "num_persons", "frames", "pipeline",
             "text", "weights")
_MODEL_KEYS = ("encoder", "preset", "args", "input_frames", "temperature", "learn_temperature",
               "feature_norm", "modality", "feature_dim", "text_dim")


# =========================================================================== results
@dataclass
class Prediction:
    """Ranked labels for one sequence.

    Attributes:
        labels: the ``top_k`` best candidate labels, best first.
        scores: their cosine similarity to the sequence's feature (in [-1, 1]).
        probs: their probability: softmax over *all* candidate labels of
            ``logit_scale * cosine`` (the model's trained temperature).
        source: the file (or ``file[i]``, ``array[i]``) the sequence came from.
        true_label: the class name stored in the file, when it has one.
    """

    labels: list[str]
    scores: list[float]
    probs: list[float]
    source: str = "array"
    true_label: str | None = None

    @property
    def label(self) -> str:
        """The best label."""
        return self.labels[0]

    @property
    def score(self) -> float:
        """Cosine similarity of the best label."""
        return self.scores[0]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "true_label": self.true_label,
                "ranking": [{"label": l, "score": s, "prob": p}
                            for l, s, p in zip(self.labels, self.scores, self.probs)]}


# =========================================================================== helpers
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _versions() -> dict:
    import zeroskel
    return {"zeroskel": str(zeroskel.__version__), "torch": str(torch.__version__),
            "numpy": str(np.__version__)}


def _jsonable(obj):
    """Plain JSON types (numpy scalars / arrays / tuples converted)."""
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def _check_labels(labels, where: str = "labels") -> list[str]:
    if labels is None:
        raise ConfigError(f"{where}: no candidate labels; pass labels=[...] (--labels or --labels-file)")
    if isinstance(labels, str):
        raise ConfigError(f"{where}: expected a list of label strings, got one string {labels!r}")
    labels = list(labels)
    if not labels:
        raise ConfigError(f"{where}: the label list is empty; give at least one candidate label "
                          "(--labels or --labels-file)")
    bad = [repr(l) for l in labels if not isinstance(l, str) or not l.strip()]
    if bad:
        raise ConfigError(f"{where}: labels must be non-empty strings, got {', '.join(bad[:5])}")
    seen, dup = set(), []
    for l in labels:
        if l in seen and l not in dup:
            dup.append(l)
        seen.add(l)
    if dup:
        raise ConfigError(f"{where}: duplicate labels {dup[:5]}; each candidate must appear once")
    return labels


def _fit_persons(data: np.ndarray, persons: int) -> np.ndarray:
    """(3, T, V, M) -> (3, T, V, persons): keep the first persons, or zero-pad."""
    m = data.shape[3]
    if m == persons:
        return data
    if m > persons:
        return data[..., :persons]
    pad = np.zeros(data.shape[:3] + (persons - m,), dtype=np.float32)
    return np.concatenate([data, pad], axis=3)


# =========================================================================== recognizer
def _frames(value, i: int) -> int:
    """``lengths[i]`` as a frame count; a fraction, an array or a non-number is a DataError."""
    v = np.asarray(value)
    if v.ndim != 0 or not whole_numbers(v):
        raise DataError(f"lengths[{i}] must be a whole number of frames, got {value!r}")
    return int(v)


class Recognizer:
    """A trained skeleton-text model that ranks free-text labels for skeleton sequences.

    Args:
        model: a trained :class:`zeroskel.methods.pgfa.PGFAModel` ((N, 3, T, V, M) -> (N, D)).
        card: the bundle card (see :func:`Recognizer.card`); made by :meth:`from_run`,
            :meth:`from_classifier` or read by :meth:`load`.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``; skeletons are encoded there.
        cache_dir: text-embedding cache folder (default ``<cache root>/text_embeddings``).
        text_device: device of the sentence model (default ``"cpu"``: label texts are few).
        text_encoder: an existing :class:`zeroskel.text.encoders.SentenceEncoder` to use
            (e.g. shared by several recognizers, loaded once); it must be the card's model.

    Sequence inputs (``encode`` / ``predict`` / ``score``) may be:

    * a file path (any format of :func:`zeroskel.data.readers.anyfile.load_recordings`;
      a multi-sample file gives several sequences), a
      :class:`~zeroskel.data.readers.anyfile.Recording`, or one array (3, T, V, M),
      (T, V, 3) or (M, T, V, 3);
    * a list mixing any of those (sequences of different lengths are fine);
    * an (N, 3, T, V, M) array with ``lengths`` (N,) (default: frames up to the last
      non-zero one).

    Array layouts come from ``layout=`` or the joint count (20 -> kinect_v1, 25 -> ntu25).
    A sequence in another layout than the model's is mapped when a mapping exists
    (:func:`zeroskel.data.layouts.map_layout`), else a :class:`ConfigError` names it.
    Persons beyond the model's ``num_persons`` are dropped (readers put the main actor
    first), missing ones are zero.

    A model trained with temporal segments (``text.segment_sources``) or body-part blocks
    (``text.part_sources``) scores labels with its global block only, since a label is one
    text with no start / middle / end phases or per-part descriptions; its test-set numbers
    (``zeroskel evaluate``) use all blocks with those texts.
    """

    def __init__(self, model: torch.nn.Module, card: dict, device: str | torch.device = "cpu",
                 cache_dir: str | os.PathLike | None = None, text_device: str = "cpu",
                 text_encoder=None) -> None:
        from .engine.trainer import resolve_device

        for key in _REQUIRED:
            if key not in card:
                raise CheckpointError(f"model card: missing key {key!r}")
        self.card = card
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.cache_dir = cache_dir
        self.text_device = text_device
        self._encoder = None
        if text_encoder is not None:
            self._check_text_encoder(text_encoder)
            self._encoder = text_encoder
        self._label_cache: dict[str, np.ndarray] = {}
        self._pipelines: dict[str, Any] = {}
        self._separable: bool | None = None
        self._absent: dict[tuple[int, int], torch.Tensor] = {}
        self.logit_scale = float(self.model.logit_scale.detach().cpu())

    # ------------------------------------------------------------------ properties
    @property
    def layout(self) -> str:
        """Joint layout the encoder was built for."""
        return self.card["layout"]

    @property
    def input_layout(self) -> str:
        """Joint layout the preprocessing pipeline takes (the training data's)."""
        return self.card["input_layout"]

    @property
    def num_persons(self) -> int:
        """Persons M per sequence the encoder takes (extra ones are dropped, missing ones zero)."""
        return int(self.card["num_persons"])

    @property
    def frames(self) -> int:
        """Frames per sequence after preprocessing (as in training)."""
        return int(self.card["frames"])

    @property
    def text_model(self) -> str:
        """Name of the sentence model that embeds the labels (e.g. ``all-MiniLM-L6-v2``)."""
        return self.card["text"]["model"]

    @property
    def feature_dim(self) -> int:
        """D: width of :meth:`encode`'s features and of the label embeddings (the text model's)."""
        return int(self.card["model"]["text_dim"])

    @property
    def training_classes(self) -> list[str]:
        """Class names the model was trained on (seen classes), for information."""
        return list(self.card.get("training", {}).get("seen_classes", []))

    def __repr__(self) -> str:
        m = self.card["model"]
        return (f"Recognizer({self.card['method']} {m['encoder']}/{m['preset']}, layout={self.layout!r}, "
                f"frames={self.frames}, text={self.text_model!r}, device={str(self.device)!r})")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_classifier(cls, clf, device: str | torch.device | None = None, source: str = "",
                        **kwargs) -> "Recognizer":
        """From an in-memory :class:`zeroskel.methods.pgfa.PGFAClassifier` (its card and model)."""
        card = _card_from_pgfa(clf.card, clf.model, source)
        return cls(clf.model, card, device if device is not None else clf.device, **kwargs)

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, device: str | torch.device = "cpu",
                 checkpoint: str = "final.pt", **kwargs) -> "Recognizer":
        """The selected final model of a finished PGFA run directory (``final.pt``)."""
        from .methods.pgfa import PGFAClassifier

        run_dir = Path(run_dir)
        ck = run_dir / checkpoint
        if not run_dir.is_dir():
            raise CheckpointError(f"run directory {run_dir} does not exist")
        if not ck.is_file():
            if (run_dir / "encoder.pt").is_file():
                raise CheckpointError(f"{run_dir} is a pretraining run: it has an encoder for feature extraction "
                                      "(zeroskel extract), no text alignment to rank labels with or to export; use a PGFA run")
            from .engine.runs import unfinished_hint
            raise CheckpointError(f"{run_dir}: no {checkpoint}; {unfinished_hint(run_dir)}, or this is not a PGFA "
                                  "run directory")
        clf = PGFAClassifier.load(ck, device="cpu")
        card = _card_from_pgfa(clf.card, clf.model, str(run_dir))
        return cls(clf.model, card, device, **kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu", **kwargs) -> "Recognizer":
        """Load a bundle folder written by :meth:`save` / :func:`export_bundle`.

        A PGFA run directory (with ``final.pt``) is accepted too (:meth:`from_run`); another run
        directory (a pretraining run, an unfinished run) is an error saying what it lacks.

        Raises:
            CheckpointError: missing folder/files, corrupt weights, or a bundle written in
                a newer format than this zeroskel reads (naming the file).
        """
        from .methods.pgfa import build_model

        path = Path(path).expanduser()
        if not path.exists():
            raise CheckpointError(f"model {path} not found (expected a bundle folder with {CARD_FILE} "
                                  f"and {WEIGHTS_FILE})")
        if path.is_dir() and not (path / CARD_FILE).is_file() and \
                any((path / f).is_file() for f in ("final.pt", "config.yaml")):
            # a run directory: from_run says what it lacks (a pretraining run's encoder has no
            # text alignment; an unfinished run is resumed), where "export it first" could not work
            return cls.from_run(path, device=device, **kwargs)
        card = read_bundle_card(path)
        wfile = path / card["weights"].get("file", WEIGHTS_FILE)
        if not wfile.is_file():
            raise CheckpointError(f"{path}: missing weights file {wfile.name} (the bundle is incomplete; "
                                  "copy the whole folder)")
        want = card["weights"].get("sha256")
        if want and _sha256(wfile) != want:
            raise CheckpointError(f"{wfile}: corrupt weights (sha256 differs from the one in "
                                  f"{CARD_FILE}); re-export or re-copy the bundle")
        from .engine.trainer import load_checkpoint
        state = load_checkpoint(wfile)  # a CheckpointError with a one-line reason if unreadable
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{wfile}: expected a state dict of tensors")
        m = card["model"]
        try:
            model = build_model({"model": {k: m.get(k) for k in _MODEL_KEYS}}, card["layout"],
                                int(card["num_persons"]), int(m["text_dim"]), segments=int(m.get("segments") or 0),
                                parts=list(m.get("parts") or []))
        except (ConfigError, TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path / CARD_FILE}: cannot rebuild the model from key 'model' "
                                  f"({type(e).__name__}: {e})") from None
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(f"{wfile}: weights do not match the model described in {CARD_FILE} "
                                  f"({str(e).splitlines()[0][:200]})") from None
        return cls(model, card, device, **kwargs)

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the bundle folder ``path`` (atomically: built aside, then renamed).

        Args:
            overwrite: replace an existing bundle at ``path``; without it an existing
                non-empty folder is a :class:`ConfigError`.
        """
        path = Path(path).expanduser()
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            if not overwrite:
                raise ConfigError(f"{path} exists and is not empty; choose a new folder or overwrite "
                                  "(--force / overwrite=True)")
            if path.is_dir() and not (path / CARD_FILE).is_file():
                raise ConfigError(f"{path} is not a zeroskel bundle; refusing to overwrite it")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            torch.save(state, tmp / WEIGHTS_FILE)
            card = dict(self.card)
            card["weights"] = {"file": WEIGHTS_FILE, "sha256": _sha256(tmp / WEIGHTS_FILE),
                               "parameters": int(sum(v.numel() for v in state.values()))}
            card["format"], card["format_version"] = BUNDLE_FORMAT, BUNDLE_VERSION
            card["versions"] = _versions()
            card["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            (tmp / CARD_FILE).write_text(json.dumps(_jsonable(card), indent=1), encoding="utf-8")
            (tmp / README_FILE).write_text(_readme(card), encoding="utf-8")
            if path.exists():
                old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
                path.rename(old)
                tmp.rename(path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.card = json.loads((path / CARD_FILE).read_text(encoding="utf-8"))
        return path

    # ------------------------------------------------------------------ inputs
    def recordings(self, sequences, lengths=None, layout: str | None = None) -> list:
        """Normalise any accepted input to a list of
        :class:`~zeroskel.data.readers.anyfile.Recording` (see the class docstring)."""
        from .data.readers.anyfile import Recording, as_recording, load_recordings

        if isinstance(sequences, (str, os.PathLike, Recording)):
            sequences = [sequences]
        elif isinstance(sequences, torch.Tensor):
            sequences = sequences.detach().cpu().numpy()
        if isinstance(sequences, np.ndarray):
            if sequences.ndim == 5:
                n = len(sequences)
                if lengths is not None:
                    lengths = np.asarray(lengths)
                    if lengths.shape != (n,):
                        raise DataError(f"lengths must have shape ({n},) for {n} sequences, got {lengths.shape}")
                return [as_recording(sequences[i], layout, None if lengths is None else _frames(lengths[i], i),
                                     source=f"array[{i}]") for i in range(n)]
            sequences = [sequences]
            lengths = None if lengths is None else [lengths]
        sequences = list(sequences)
        if not sequences:
            raise DataError("no sequences given (an empty list)")
        if lengths is not None and len(lengths) != len(sequences):
            raise DataError(f"lengths has {len(lengths)} entries for {len(sequences)} sequences")
        out = []
        for i, s in enumerate(sequences):
            n = None if lengths is None or lengths[i] is None else _frames(lengths[i], i)
            if isinstance(s, Recording):
                out.append(s)
            elif isinstance(s, (str, os.PathLike)):
                out.extend(load_recordings(s, layout))
            else:
                if isinstance(s, torch.Tensor):
                    s = s.detach().cpu().numpy()
                out.append(as_recording(np.asarray(s), layout, n,
                                        source="array" if len(sequences) == 1 else f"array[{i}]"))
        return out

    def _pipeline(self, layout: str):
        """The preprocessing built for input ``layout``, or None if it does not lead to the
        model's layout (cached: built once per layout)."""
        from .data.transforms import build_pipeline

        if layout not in self._pipelines:
            try:
                pipe = build_pipeline(self.card["pipeline"], layout, where=f"{CARD_FILE} 'pipeline'")
                ok = pipe.output_layout(layout) == self.layout
            except ConfigError:
                pipe, ok = None, False
            self._pipelines[layout] = pipe if ok else None
        return self._pipelines[layout]

    def preprocess(self, sequences, lengths=None, layout: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Sequences -> the model's input, preprocessed exactly as the training data.

        Returns:
            x: float32 (N, 3, T', V, M) (T' = ``frames`` for resizing pipelines), in the
            model's layout and person count; lengths: (N,) valid frames after preprocessing.
        """
        from .data.dataset import check_finite, head_below_hips, head_to_hips
        from .data.layouts import map_layout
        from .data.registry import DATASETS

        # every built-in dataset is Kinect data in metres; a custom one may be in any unit
        metres = self.card.get("training", {}).get("dataset") in DATASETS

        recs = sequences if _all_recordings(sequences) else self.recordings(sequences, lengths, layout)
        groups: dict[str, list[tuple[int, np.ndarray, int]]] = {}
        for i, r in enumerate(recs):
            data, lay = r.data, r.layout
            if head_below_hips(data[:, :r.length], lay) > 0.5:
                log.warning("%s: the head is below the hips in most frames, so the joint order or the "
                            "vertical axis does not match layout %r (y must point up; arrays in "
                            "UTD-MHAD's .mat joint order need layout 'utd_mhad')", r.source, lay)
            torso = head_to_hips(data[:, :r.length], lay) if metres else None
            if torso is not None and not 0.1 <= torso <= 3:
                log.warning("%s: the head is %.3g units from the hips; this model was trained on %s in "
                            "metres (about 0.6), so the scores are unreliable: give coordinates in metres",
                            r.source, torso, self.card["training"]["dataset"])
            if lay != self.input_layout and self._pipeline(lay) is None:
                try:
                    data = map_layout(data, lay, self.input_layout, joint_axis=2)
                except ConfigError as e:
                    raise ConfigError(f"{r.source}: joint layout {lay!r} does not fit this model "
                                      f"(trained on {self.input_layout!r}): {e}") from None
                lay = self.input_layout
            if data.shape[3] > self.num_persons and np.any(data[..., self.num_persons:]):
                # only when a dropped slot holds someone: NTU files are read with two slots,
                # the second all zero for a single actor
                log.warning("%s: %d persons, the model takes %d; using the first %d", r.source,
                            data.shape[3], self.num_persons, self.num_persons)
            groups.setdefault(lay, []).append((i, _fit_persons(np.asarray(data, np.float32), self.num_persons),
                                               int(r.length)))
        parts: dict[int, tuple[np.ndarray, int]] = {}
        for lay, items in groups.items():
            t_max = max(n for _, _, n in items)
            v = items[0][1].shape[2]
            x = np.zeros((len(items), 3, t_max, v, self.num_persons), dtype=np.float32)
            lens = np.empty(len(items), dtype=np.int64)
            for j, (_, d, n) in enumerate(items):
                x[j, :, :n] = d[:, :n]
                lens[j] = n
            pipe = self._pipeline(lay)
            if pipe is None:
                raise CheckpointError(f"{CARD_FILE}: pipeline {self.card['pipeline']} does not turn layout "
                                      f"{lay!r} into the model's {self.layout!r}")
            x, lens = pipe.apply_batch(x, lens)
            for j, (i, _, _) in enumerate(items):
                parts[i] = (x[j], int(lens[j]))
        t_out = max(max(p[0].shape[1] for p in parts.values()), self.frames)
        first = parts[0][0]
        out = np.zeros((len(recs), 3, t_out) + first.shape[2:], dtype=np.float32)
        lens = np.empty(len(recs), dtype=np.int64)
        for i in range(len(recs)):
            d, n = parts[i]
            out[i, :, :d.shape[1]] = d  # shorter than the training frames: zero-padded as in training
            lens[i] = n
        for i in range(len(recs)):
            check_finite(out[i], f"{recs[i].source} after preprocessing")
        return out, lens

    # ------------------------------------------------------------------ features
    def encode(self, sequences, lengths=None, layout: str | None = None, batch_size: int = 64,
               normalize: bool = True) -> np.ndarray:
        """Skeleton features in the joint text space.

        Returns:
            (N, D) float32, L2-normalised unless ``normalize=False``.
        """
        x, lens = self.preprocess(sequences, lengths, layout)
        return self._encode_array(x, batch_size, normalize, lens)

    def _encode_array(self, x: np.ndarray, batch_size: int = 64, normalize: bool = True,
                      lengths: np.ndarray | None = None) -> np.ndarray:
        """Preprocessed (N, 3, T, V, M) -> (N, D) features, ``batch_size`` at a time.

        With ``lengths`` (what :meth:`preprocess` returns), each sequence is encoded padded
        to ``max(frames, its length)`` frames, as in training (every sequence padded to the
        training data's frames), whatever else is in the batch: with a pipeline that does
        not resize, the zero padding changes the features (pooling over time, resampling
        to ``input_frames``), so padding to the batch's longest sequence would make a
        recording's scores depend on the other recordings.
        """
        batch_size = whole("batch_size", batch_size, 1)
        if lengths is None:
            groups = [(x.shape[2], np.arange(len(x)))]
        else:
            t = np.minimum(np.maximum(np.asarray(lengths, dtype=np.int64), self.frames), x.shape[2])
            groups = [(int(v), np.flatnonzero(t == v)) for v in np.unique(t)]
        out: np.ndarray | None = None
        with torch.inference_mode():
            for frames, idx in groups:
                for s in range(0, len(idx), batch_size):
                    rows = idx[s:s + batch_size]
                    f = self._forward(np.ascontiguousarray(x[rows, :, :frames]))
                    if normalize:
                        f = torch.nn.functional.normalize(f, dim=1)
                    f = f.cpu().numpy()
                    if out is None:
                        out = np.empty((len(x), f.shape[1]), dtype=f.dtype)
                    out[rows] = f
        return out

    def _forward(self, x: np.ndarray) -> torch.Tensor:
        """Model output of one chunk, skipping the encoder for absent persons when exact.

        Most recordings have one actor, but NTU-style models take M=2 person slots. When
        the model treats persons independently and averages them (checked numerically
        once, :meth:`_persons_separable`), ``model(x) = mean_m model(x[..., m:m+1])``
        (the projection is affine), and an all-zero slot contributes a constant computed
        once; so a single-actor sequence costs one encoder pass instead of M.
        """
        m = x.shape[-1]
        if m < 2 or not self._persons_separable():
            return self._model(torch.from_numpy(x).to(self.device))
        present = np.any(x != 0, axis=(1, 2, 3))  # (N, M)
        if present.all():
            return self._model(torch.from_numpy(x).to(self.device))
        out = torch.zeros((len(x), self.feature_dim), dtype=torch.float32, device=self.device)
        for k in range(m):
            idx = np.flatnonzero(present[:, k])
            if len(idx):
                xb = torch.from_numpy(np.ascontiguousarray(x[idx, ..., k:k + 1])).to(self.device)
                out[torch.from_numpy(idx).to(self.device)] += self._model(xb)
            if len(idx) < len(x):
                absent = torch.from_numpy(~present[:, k]).to(self.device)
                out[absent] += self._absent_person(x.shape[2], x.shape[3])
        return out / m

    def _model(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) model features; a segment / part model gives its global block only: a
        free-text label has no phase or part texts for the local blocks to match."""
        out = self.model(x).float()
        return out[:, :self.feature_dim] if getattr(self.model, "num_blocks", 1) > 1 else out

    def _absent_person(self, frames: int, joints: int) -> torch.Tensor:
        key = (frames, joints)
        if key not in self._absent:
            z = torch.zeros((1, 3, frames, joints, 1), device=self.device)
            self._absent[key] = self._model(z)[0]
        return self._absent[key]

    def _persons_separable(self) -> bool:
        """Whether model(x) equals the mean of the model on each person slot (checked once
        on random input; False e.g. for Shift-GCN, whose input BatchNorm mixes persons)."""
        if self._separable is None:
            from .data.layouts import get_layout

            g = torch.Generator().manual_seed(0)
            v = get_layout(self.layout).num_joints
            x = (0.2 * torch.randn((2, 3, self.frames, v, self.num_persons), generator=g)).to(self.device)
            with torch.inference_mode():
                full = self._model(x)
                split = torch.stack([self._model(x[..., k:k + 1])
                                     for k in range(self.num_persons)]).mean(0)
            self._separable = bool(torch.allclose(full, split, rtol=1e-4, atol=1e-5))
        return self._separable

    @property
    def text_encoder(self):
        """The sentence model of the card (loaded lazily, offline, checksum-verified)."""
        if self._encoder is None:
            from .text.encoders import KNOWN_WEIGHTS_SHA256, SentenceEncoder

            want = self.card["text"].get("checksum")
            try:
                enc = SentenceEncoder(self.text_model, device=self.text_device)
            except ConfigError as e:
                # a local text-model folder recorded as trained (often a relative path) is not
                # found from here or on another machine; the weights' checksum still names
                # the model when it is one of the known ones
                known = [n for n, h in KNOWN_WEIGHTS_SHA256.items() if want and h == want]
                if not known:
                    raise ConfigError(
                        f"this model's text model {self.text_model!r} ({CARD_FILE} key 'text.model', "
                        f"weights sha256 {str(want)[:12]}...) cannot be loaded from here: {e}. Put that "
                        "folder there, or pass text_encoder=SentenceEncoder(FOLDER) to Recognizer.load"
                    ) from None
                log.info("text model %r not found; using the installed %r, which has the recorded "
                         "weights checksum", self.text_model, known[0])
                enc = SentenceEncoder(known[0], device=self.text_device)
            self._check_text_encoder(enc)
            self._encoder = enc
        return self._encoder

    def _check_text_encoder(self, enc) -> None:
        want = self.card["text"].get("checksum")
        if want and enc.checksum != want:
            raise CheckpointError(
                f"text model {enc.name!r} at {enc.path} has weights sha256 {enc.checksum[:12]}..., "
                f"but this model was trained with {self.text_model!r} ({want[:12]}...); label "
                "embeddings would not match. Install the same text model version")

    def encode_labels(self, labels: Sequence[str]) -> np.ndarray:
        """Label texts -> (K, D) float32 L2-normalised sentence embeddings.

        Cached in memory (per recognizer) and on disk (keyed by the text model's weights and
        setup checksums and the text, in training's class-text cache folder), so a label is
        embedded once.
        """
        from .text.cache import EmbeddingCache, embedding_key

        labels = _check_labels(labels)
        missing = [l for l in dict.fromkeys(labels) if l not in self._label_cache]
        if missing:
            checksum = self.card["text"].get("checksum") or self.text_encoder.checksum
            setup = self._text_setup_checksum()
            disk = EmbeddingCache(self.cache_dir)
            todo = []
            for l in missing:
                arr = disk.get(embedding_key(checksum, [l], "sentence", model_setup=setup, normalize=True))
                if arr is not None and arr.shape == (1, self.feature_dim):
                    self._label_cache[l] = arr[0].astype(np.float32)
                else:
                    todo.append(l)
            if todo:
                emb = self.text_encoder.encode(todo, normalize=True)
                if emb.shape[1] != self.feature_dim:
                    raise CheckpointError(f"text model {self.text_model!r} gives {emb.shape[1]}-d embeddings, "
                                          f"the model expects {self.feature_dim}")
                for l, e in zip(todo, emb):
                    disk.put(embedding_key(checksum, [l], "sentence", model_setup=setup, normalize=True), e[None])
                    self._label_cache[l] = e.astype(np.float32)
        return np.stack([self._label_cache[l] for l in labels])

    def _text_setup_checksum(self) -> str:
        """The text model folder's non-weight files (pooling, tokenizer, configs), which key the
        disk cache beside the weights, as in training's cache; the folder is hashed, the model
        not loaded (nor its weights hashed) when the recorded text model is found as it is."""
        if self._encoder is not None:
            return self._encoder.setup_checksum
        from .text.encoders import SentenceEncoder
        try:
            return SentenceEncoder(self.text_model).setup_checksum
        except ConfigError:  # not found from here: text_encoder finds (or refuses) a stand-in
            return self.text_encoder.setup_checksum

    # ------------------------------------------------------------------ scoring
    def _alignment(self, align) -> dict | None:
        if not align:
            return None
        params = dict(_ALIGN_DEFAULTS)
        params.update({k: v for k, v in (self.card.get("alignment") or {}).items() if k in _ALIGN_DEFAULTS})
        if isinstance(align, dict):
            bad = [k for k in align if k not in _ALIGN_DEFAULTS]
            if bad:
                raise ConfigError(f"align: unknown option {bad[0]!r}; options: {', '.join(_ALIGN_DEFAULTS)}")
            params.update(align)
        return params

    def score_features(self, feats: np.ndarray, labels: Sequence[str], align: bool | dict = False,
                       groups: Sequence | None = None) -> np.ndarray:
        """(N, D) features x labels -> (N, K) cosine similarities (see :meth:`score`)."""
        from .methods.alignment import aligned_scores

        anchors = self.encode_labels(labels)
        feats = np.asarray(feats, dtype=np.float32)
        if feats.ndim != 2 or feats.shape[1] != anchors.shape[1]:
            raise DataError(f"score_features: feats must be (N, {anchors.shape[1]}) (what encode() returns), "
                            f"got shape {feats.shape}")
        if not np.isfinite(feats).all():
            raise DataError("score_features: feats contain NaN or inf")
        feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        params = self._alignment(align)
        if groups is not None and (params is None or not params.get("center")):
            raise ConfigError("groups centre the alignment per group: they need align=True with center "
                              "(the bundle's alignment or align={'center': True})")
        if params is not None:
            return aligned_scores(feats, anchors, groups=groups, **params).astype(np.float32)
        return feats @ anchors.T

    def score(self, sequences, labels: Sequence[str], lengths=None, layout: str | None = None,
              align: bool | dict = False, batch_size: int = 64, groups: Sequence | None = None) -> np.ndarray:
        """(N, K) cosine similarity of each sequence to each label (``decision_function``).

        Args:
            align: PGFA's test-time prototype alignment over this batch (off by default;
                ``True`` uses the bundle's settings, a dict overrides them: ``alpha``,
                ``temperature``, ``iterations``, ``beta``, ``min_samples``, ``pseudo_labels``,
                ``epsilon``, ``center``). Transductive: meaningful for a batch of many sequences of
                these labels; ``pseudo_labels="balanced"`` further assumes the batch covers
                the labels about equally.
            groups: one group per sequence (e.g. the person recorded): with ``align`` and
                centring, each group is centred on its own mean, as a run with
                ``alignment.center_by`` (the card's ``alignment.center_by``) was evaluated.
                Without it the batch is centred as one group.
        """
        labels = _check_labels(labels)
        return self.score_features(self.encode(sequences, lengths, layout, batch_size), labels, align, groups)

    def predict(self, sequences, labels: Sequence[str], top_k: int = 5, lengths=None,
                layout: str | None = None, align: bool | dict = False,
                batch_size: int = 64, groups: Sequence | None = None) -> list[Prediction]:
        """Rank ``labels`` for every sequence.

        Args:
            sequences: see the class docstring (paths, arrays, recordings, or a batch).
            labels: K candidate label texts (free text, e.g. ``["wave", "kick"]``).
            top_k: how many ranked labels to keep per sequence (at most K).
            lengths, layout: for array inputs.
            align, groups: prototype alignment over the batch (see :meth:`score`).
        Returns:
            one :class:`Prediction` per sequence, in input order.
        """
        labels = _check_labels(labels)
        if as_whole(top_k) is None or as_whole(top_k) < 1:
            raise ConfigError(f"top_k must be a positive integer, got {top_k!r} (--top-k)")
        top_k = as_whole(top_k)
        recs = self.recordings(sequences, lengths, layout)
        x, lens = self.preprocess(recs)
        cos = self.score_features(self._encode_array(x, batch_size, lengths=lens), labels, align, groups)
        z = self.logit_scale * cos
        z = z - z.max(axis=1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(axis=1, keepdims=True)
        k = min(int(top_k), len(labels))
        order = np.argsort(-cos, axis=1, kind="stable")[:, :k]
        return [Prediction(labels=[labels[j] for j in order[i]],
                           scores=[float(cos[i, j]) for j in order[i]],
                           probs=[float(prob[i, j]) for j in order[i]],
                           source=recs[i].source, true_label=recs[i].label)
                for i in range(len(recs))]


def _all_recordings(seqs) -> bool:
    from .data.readers.anyfile import Recording
    return isinstance(seqs, list) and bool(seqs) and all(isinstance(s, Recording) for s in seqs)


# =========================================================================== cards
def _input_layout(cfg: dict, model_layout: str) -> str:
    """Layout of the training data before preprocessing (differs from the model's when the
    pipeline maps layouts)."""
    from .data.transforms import build_pipeline

    spec = (cfg.get("data") or {}).get("pipeline")
    try:
        from .data.cache import _layout_of
        lay = _layout_of(cfg.get("dataset"))
    except Exception:  # a custom dataset path that is gone: fall back below
        lay = None
    if lay is not None:
        return lay
    try:
        if build_pipeline(spec, model_layout).output_layout(model_layout) == model_layout:
            return model_layout
    except ConfigError:
        pass
    raise CheckpointError(f"cannot tell the input joint layout of the training data "
                          f"({cfg.get('dataset')!r}) for pipeline {spec!r}")


def _card_from_pgfa(ck: dict, model, source: str = "") -> dict:
    """Bundle card from a PGFA checkpoint card (``PGFAClassifier.card``)."""
    from .data.transforms import build_pipeline

    cfg = ck.get("config") or {}
    for key in ("layout", "num_persons", "frames"):
        if key not in ck:
            raise CheckpointError(f"{source or 'checkpoint'}: missing key {key!r} in the checkpoint card")
    layout = ck["layout"]
    in_layout = _input_layout(cfg, layout)
    pipe = build_pipeline(cfg.get("data", {}).get("pipeline"), in_layout, where="run config data.pipeline")
    m = cfg.get("model") or {}
    names = list(ck.get("class_names") or [])
    seen = [names[i] for i in ck.get("seen", []) if i < len(names)]
    unseen = [names[i] for i in ck.get("unseen", []) if i < len(names)]
    enc = model.encoder
    return _jsonable({
        "format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION, "method": "pgfa",
        "model": {"encoder": m.get("encoder", "stgcn"), "preset": m.get("preset", "slim"),
                  "args": dict(m.get("args") or {}), "input_frames": m.get("input_frames"),
                  "temperature": m.get("temperature", 0.07),
                  "learn_temperature": bool(m.get("learn_temperature", False)),
                  "feature_norm": m.get("feature_norm") or "none",
                  "modality": m.get("modality") or "joint",
                  "segments": int(getattr(model, "segments", 0)),
                  "parts": list(getattr(model, "parts", ())),
                  "feature_dim": int(getattr(enc, "feature_dim", 0)), "text_dim": int(model.text_dim),
                  "logit_scale": float(model.logit_scale.detach().cpu())},
        "layout": layout, "input_layout": in_layout, "num_persons": int(ck["num_persons"]),
        "frames": int(ck["frames"]), "pipeline": pipe.to_config(),
        "text": {"model": ck.get("text_model") or (cfg.get("text") or {}).get("model"),
                 "checksum": ck.get("text_checksum"), "dim": int(model.text_dim),
                 "source": ck.get("text_source"), "segment_sources": ck.get("text_segment_sources"),
                 "part_sources": ck.get("text_part_sources")},
        "alignment": {k: v for k, v in (cfg.get("alignment") or {}).items()
                      if k in _ALIGN_DEFAULTS or k == "center_by"},
        "training": {"dataset": ck.get("dataset", cfg.get("dataset")), "split": ck.get("split"),
                     "partition": ck.get("partition"), "seed": cfg.get("seed"),
                     "class_names": names, "seen_classes": seen, "unseen_classes": unseen,
                     "selection": ck.get("selection"), "versions": ck.get("versions"),
                     "run": source},
        "weights": {"file": WEIGHTS_FILE},
    })


def read_bundle_card(path: str | os.PathLike) -> dict:
    """The checked ``bundle.json`` of a bundle folder (no weights are read)."""
    path = Path(path).expanduser()
    f = path / CARD_FILE
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a model bundle folder")
    if not f.is_file():
        hint = " (a run directory? export it first: zeroskel export RUN_DIR OUT_DIR)" \
            if (path / "config.yaml").is_file() else ""
        raise CheckpointError(f"{path}: not a zeroskel model bundle, missing {CARD_FILE}{hint}")
    try:
        card = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{f}: unreadable card ({e})") from None
    if not isinstance(card, dict) or card.get("format") != BUNDLE_FORMAT:
        raise CheckpointError(f"{f}: not a zeroskel bundle card (format {card.get('format') if isinstance(card, dict) else None!r})")
    ver = card.get("format_version")
    if not isinstance(ver, int) or isinstance(ver, bool):
        raise CheckpointError(f"{f}: key 'format_version' must be an integer, got {ver!r}")
    if ver > BUNDLE_VERSION:
        import zeroskel
        made = (card.get("versions") or {}).get("zeroskel", "?")
        raise CheckpointError(f"{f}: bundle format version {ver} (written by zeroskel {made}) is newer than "
                              f"this zeroskel {zeroskel.__version__} reads (up to {BUNDLE_VERSION}); "
                              "upgrade zeroskel")
    for key in _REQUIRED:
        if key not in card:
            raise CheckpointError(f"{f}: missing key {key!r}")
    for key in ("encoder", "preset", "text_dim"):
        if key not in card["model"]:
            raise CheckpointError(f"{f}: missing key 'model.{key}'")
    if not card["text"].get("model"):
        raise CheckpointError(f"{f}: missing key 'text.model'")
    return card


def _readme(card: dict) -> str:
    t = card.get("training", {})
    m = card["model"]
    seen = ", ".join(t.get("seen_classes") or []) or "?"
    return (f"# zeroskel model bundle\n\n"
            f"{card['method'].upper()} skeleton-text model: {m['encoder']} ({m['preset']}) encoder, "
            f"{m['text_dim']}-d text space of `{card['text']['model']}`.\n\n"
            f"- joint layout: `{card['layout']}` (input `{card['input_layout']}`), "
            f"{card['num_persons']} person(s), {card['frames']} frames after preprocessing\n"
            f"- preprocessing: `{json.dumps(card['pipeline'])}`\n"
            f"- trained on: {t.get('dataset')} ({len(t.get('seen_classes') or [])} classes: {seen})\n"
            f"- written by zeroskel {card.get('versions', {}).get('zeroskel')} "
            f"(bundle format {card.get('format_version')})\n\n"
            "```python\nfrom zeroskel.recognizer import Recognizer\n"
            "rec = Recognizer.load(\"THIS_FOLDER\")\n"
            "rec.predict([\"recording.npy\"], labels=[\"wave\", \"kick\"])\n```\n\n"
            "or `zeroskel predict THIS_FOLDER recording.npy --labels wave kick`.\n")


def export_bundle(run_dir: str | os.PathLike, out_dir: str | os.PathLike, overwrite: bool = False,
                  checkpoint: str = "final.pt") -> Path:
    """Export a finished PGFA run's selected model (``final.pt``) as a bundle folder.

    Returns:
        the bundle folder ``out_dir``.
    """
    return Recognizer.from_run(run_dir, device="cpu", checkpoint=checkpoint).save(out_dir, overwrite=overwrite)
