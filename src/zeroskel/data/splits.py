"""Zero-shot seen/unseen class splits: every published benchmark split, plus user files.

The published lists live in ``zeroskel/configs/splits.yaml`` (small facts with their
attribution: paper, repository and file). Names follow ``<source>-<seen>/<unseen>`` for
fixed splits (``synse-55/5``, ``purls-22/5``) and ``<source>-<k>`` for the random-split
protocols (``smie-1``, ``sadvae-2``); names are per dataset, so ``smie-1`` on ntu120 is
SMIE's ``split_4``. Where the field disagrees with a source, both lists are kept under
distinct names (``synse-48/12`` is the list every later paper reports on,
``synse-orig-48/12`` the SynSE repository's own file).

Class ids are the dataset's original 0-based ids; ``seen`` and ``unseen`` are sorted.

Protocol (see README): train on the seen classes of the train partition, ZSL-test on the
unseen classes of the test partition, GZSL-test on all classes of the test partition.
Model selection must not look at unseen classes: :meth:`ZeroShotSplit.validation_split`
carves pseudo-unseen classes out of the seen ones, :meth:`ZeroShotSplit.holdout_seen`
holds out a stratified fraction of the seen training samples.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import ConfigError, DataError, unknown_name, yaml_problem

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import SkeletonDataset

KINDS = ("benchmark", "validation", "user")


@dataclass(frozen=True)
class ZeroShotSplit:
    """One seen/unseen class split of a dataset.

    Attributes:
        name: registry name (``synse-55/5``) or a user file's path.
        dataset: registry dataset name (``ntu60``, ``ntu120``, ``pku_mmd1``, ``nw_ucla``,
            ``utd_mhad``) or ``""`` for a user split of an unnamed dataset.
        num_classes: number of classes of the dataset.
        seen: sorted seen class ids.
        unseen: sorted unseen class ids.
        source: who published it (``"synse"``, ``"purls"``, ...; ``"user"`` for files).
        note: provenance details and caveats.
        citation, repo, file: the paper, its repository and the file the list comes from.
        kind: ``"benchmark"`` (seen + unseen = all classes), ``"validation"`` (both drawn
            from the seen classes of ``parent``; the parent's unseen classes take no part)
            or ``"user"``.
        parent: for validation splits, the benchmark split they were carved from.
        aliases: other names :func:`get_split` accepts for this split.
    """

    name: str
    dataset: str
    num_classes: int
    seen: tuple[int, ...]
    unseen: tuple[int, ...]
    source: str
    note: str = ""
    citation: str = ""
    repo: str = ""
    file: str = ""
    kind: str = "benchmark"
    parent: str | None = None
    aliases: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "seen", tuple(sorted(int(c) for c in self.seen)))
        object.__setattr__(self, "unseen", tuple(sorted(int(c) for c in self.unseen)))
        object.__setattr__(self, "aliases", tuple(self.aliases))
        where = f"split {self.name!r} ({self.dataset or 'user dataset'})"
        if self.kind not in KINDS:
            raise ConfigError(f"{where}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        for key, ids in (("seen", self.seen), ("unseen", self.unseen)):
            if not ids:
                raise ConfigError(f"{where}: empty '{key}' class list")
            if len(set(ids)) != len(ids):
                dup = sorted({c for c in ids if ids.count(c) > 1})
                raise ConfigError(f"{where}: duplicate class ids {dup} in '{key}'")
            bad = [c for c in ids if not 0 <= c < self.num_classes]
            if bad:
                raise ConfigError(f"{where}: '{key}' class ids {bad} outside 0..{self.num_classes - 1}")
        both = sorted(set(self.seen) & set(self.unseen))
        if both:
            raise ConfigError(f"{where}: class ids {both} are both seen and unseen")
        if self.kind == "benchmark" and len(self.seen) + len(self.unseen) != self.num_classes:
            missing = sorted(set(range(self.num_classes)) - set(self.seen) - set(self.unseen))
            raise ConfigError(f"{where}: seen and unseen do not cover all {self.num_classes} classes; "
                              f"missing {missing}")

    # ------------------------------------------------------------------ views
    @property
    def seen_array(self) -> np.ndarray:
        return np.asarray(self.seen, dtype=np.int64)

    @property
    def unseen_array(self) -> np.ndarray:
        return np.asarray(self.unseen, dtype=np.int64)

    @property
    def classes(self) -> np.ndarray:
        """All classes taking part (seen then unseen ids, each sorted); the GZSL label set."""
        return np.concatenate([self.seen_array, self.unseen_array])

    @property
    def label(self) -> str:
        return f"{len(self.seen)}/{len(self.unseen)}"

    def describe(self) -> str:
        """One paragraph for reports and the CLI."""
        lines = [f"{self.dataset} {self.name} ({self.label}, {self.kind}; source: {self.source})"]
        if self.citation:
            lines.append(f"  paper: {self.citation}")
        if self.repo or self.file:
            lines.append(f"  from:  {self.repo} {self.file}".rstrip())
        if self.parent:
            lines.append(f"  carved from the seen classes of {self.parent}")
        if self.note:
            lines.append(f"  note:  {self.note}")
        if self.aliases:
            lines.append(f"  also:  {', '.join(self.aliases)}")
        lines.append(f"  unseen: {list(self.unseen)}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-able record (for checkpoint cards and result files)."""
        return {"name": self.name, "dataset": self.dataset, "num_classes": self.num_classes,
                "seen": list(self.seen), "unseen": list(self.unseen), "source": self.source,
                "kind": self.kind, "parent": self.parent, "file": self.file}

    # ------------------------------------------------------------------ checks
    def check(self, dataset: "SkeletonDataset", partition: str | None = None) -> None:
        """Check that this split can be run on ``dataset``.

        Raises :class:`ConfigError` when the dataset has a different number of classes or
        names another built-in dataset, and :class:`DataError` when a seen class has no
        sample in the train part of ``partition`` or an unseen class none in its test part
        (with ``partition=None`` every sample counts, for both).
        """
        from .registry import DATASETS

        where = f"split {self.name!r}"
        if self.dataset and dataset.name in DATASETS and dataset.name != self.dataset:
            raise ConfigError(f"{where} is a split of {self.dataset!r}, not of dataset {dataset.name!r}")
        if dataset.num_classes != self.num_classes:
            outside = sorted(c for c in self.classes.tolist() if c >= dataset.num_classes)
            extra = f"; class ids {outside} do not exist there" if outside else ""
            raise ConfigError(f"{where} is for {self.num_classes} classes, dataset {dataset.name!r} "
                              f"has {dataset.num_classes}{extra}")
        if partition is None:
            train = test = np.arange(len(dataset))
            tr_name, te_name = "the dataset", "the dataset"
        else:
            train, test = dataset.partition(partition, "train"), dataset.partition(partition, "test")
            tr_name = f"the train part of partition {partition!r}"
            te_name = f"the test part of partition {partition!r}"
        n_train, n_test = dataset.class_counts(train), dataset.class_counts(test)
        empty_seen = [c for c in self.seen if n_train[c] == 0]
        empty_unseen = [c for c in self.unseen if n_test[c] == 0]
        problems = []
        if empty_seen:
            problems.append(f"seen classes {empty_seen} have no samples in {tr_name}")
        if empty_unseen:
            problems.append(f"unseen classes {empty_unseen} have no samples in {te_name}")
        if problems:
            raise DataError(f"{where} on dataset {dataset.name!r} ({len(dataset)} samples): "
                            + "; ".join(problems))

    # ------------------------------------------------------------------ model selection
    def validation_split(self, num_unseen: int | None = None, seed: int = 0) -> "ZeroShotSplit":
        """Pseudo-unseen classes drawn from the seen ones, for honest model selection.

        Train on the new split's seen classes, pick hyper-parameters / epochs on its
        (pseudo-)unseen classes; the real unseen classes take no part. Deterministic for a
        given ``seed``.

        Args:
            num_unseen: pseudo-unseen classes to draw; default keeps the split's unseen
                fraction, ``round(len(seen) * len(unseen) / num_classes)``, at least 1.
            seed: random seed (numpy ``default_rng``).
        """
        n_seen = len(self.seen)
        if num_unseen is None:
            num_unseen = max(1, int(round(n_seen * len(self.unseen) / self.num_classes)))
        if not 1 <= num_unseen <= n_seen - 1:
            raise ConfigError(f"validation_split of {self.name!r}: num_unseen={num_unseen} must be in "
                              f"1..{n_seen - 1} (the split has {n_seen} seen classes)")
        rng = np.random.default_rng(seed)
        pseudo = sorted(rng.choice(self.seen_array, size=num_unseen, replace=False).tolist())
        rest = sorted(set(self.seen) - set(pseudo))
        return replace(
            self, name=f"{self.name}:val{n_seen - num_unseen}/{num_unseen}-seed{seed}",
            seen=tuple(rest), unseen=tuple(pseudo), kind="validation", parent=self.name,
            note=f"pseudo-unseen classes drawn from the seen classes of {self.name} (seed {seed})",
            aliases=())

    def holdout_seen(self, labels: np.ndarray, fraction: float = 0.2, seed: int = 0,
                     index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Stratified hold-out of seen-class samples (the feature files' epoch selection).

        Args:
            labels: (N,) class ids of all samples.
            fraction: share of each seen class's samples to hold out (classes with one
                sample stay in the fit part).
            seed: random seed.
            index: optional (K,) sample indices to draw from (e.g. the train partition);
                default all samples.

        Returns:
            ``(fit_idx, val_idx)``: sorted sample indices into ``labels``, seen classes only.
        """
        if index is None:
            index = np.arange(len(labels))
        return stratified_holdout(np.asarray(labels)[index], self.seen, fraction, seed, index)


def stratified_holdout(labels: np.ndarray, classes, fraction: float = 0.2, seed: int = 0,
                       index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-class random hold-out: ``round(fraction * n_c)`` samples of each class (at least 1
    when ``n_c >= 2``, never all of them). Samples of other classes are dropped.

    Args:
        labels: (N,) class ids.
        classes: the classes to keep.
        fraction: in (0, 1).
        seed: random seed.
        index: optional (N,) original indices to return instead of positions in ``labels``.

    Returns:
        ``(fit_idx, val_idx)``, sorted int64 arrays.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"hold-out fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels, dtype=np.int64)
    index = np.arange(len(labels)) if index is None else np.asarray(index, dtype=np.int64)
    if index.shape != labels.shape:
        raise DataError(f"stratified_holdout: index shape {index.shape} != labels shape {labels.shape}")
    rng = np.random.default_rng(seed)
    fit, val = [], []
    for c in sorted(int(c) for c in classes):
        members = index[labels == c]
        if len(members) == 0:
            continue
        n_val = 0 if len(members) < 2 else min(len(members) - 1, max(1, int(round(fraction * len(members)))))
        perm = rng.permutation(members)
        val.append(perm[:n_val])
        fit.append(perm[n_val:])
    cat = lambda parts: np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)  # noqa: E731
    return cat(fit), cat(val)


# ---------------------------------------------------------------------- registry
@lru_cache(maxsize=1)
def _registry() -> tuple[dict[str, dict[str, ZeroShotSplit]], dict[str, dict[str, str]]]:
    import yaml

    from .registry import DATASETS

    text = resources.files("zeroskel").joinpath("configs/splits.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    sources = raw["sources"]
    table: dict[str, dict[str, ZeroShotSplit]] = {}
    aliases: dict[str, dict[str, str]] = {}
    for ds, entries in raw["splits"].items():
        n = DATASETS[ds].num_classes
        table[ds], aliases[ds] = {}, {}
        for name, e in entries.items():
            src = sources[e["source"]]
            unseen = list(e["unseen"])
            seen = e.get("seen")
            if seen is None:
                seen = sorted(set(range(n)) - set(unseen))
            sp = ZeroShotSplit(
                name=name, dataset=ds, num_classes=n, seen=seen, unseen=unseen, source=e["source"],
                note=e.get("note", ""), citation=src["citation"], repo=src["repo"], file=e.get("file", ""),
                kind=e.get("kind", "benchmark"), parent=e.get("parent"), aliases=e.get("aliases", ()))
            table[ds][name] = sp
            for a in sp.aliases:
                aliases[ds][a] = name
    # Validation splits must sit inside their parent's seen classes.
    for ds, splits in table.items():
        for sp in splits.values():
            if sp.kind == "validation":
                parent = splits[sp.parent]
                if set(sp.seen) | set(sp.unseen) != set(parent.seen):
                    raise ConfigError(f"splits.yaml: {ds} {sp.name} does not partition the seen classes "
                                      f"of {sp.parent}")
    return table, aliases


def list_splits(dataset: str | None = None, kind: str | None = None) -> list[ZeroShotSplit]:
    """Every registered split (of one dataset / of one kind in :data:`KINDS`), in registry order.

    A registered dataset without published splits gives ``[]``; an unknown dataset or kind is a
    :class:`ConfigError` listing the valid ones.
    """
    if kind is not None and kind not in KINDS:  # a typo gave [] as if no split of that kind existed
        raise unknown_name("split kind", kind, KINDS)
    table, _ = _registry()
    if dataset is not None and dataset not in table:
        from .registry import DATASETS
        if dataset not in DATASETS:
            raise unknown_name("dataset", dataset, DATASETS)
        return []
    out = [sp for ds, splits in table.items() if dataset in (None, ds) for sp in splits.values()]
    return [sp for sp in out if kind in (None, sp.kind)]


def get_split(dataset: str, name: str, class_names: Sequence[str] | None = None) -> ZeroShotSplit:
    """A registered split by name (or alias), or a user split file (a path).

    ``class_names`` (the dataset's, in class-id order) lets a split file name its classes
    instead of giving ids, and gives a custom dataset's class count (see :func:`load_split_file`).
    Raises :class:`ConfigError` listing the dataset's valid names when ``name`` is neither.
    """
    table, aliases = _registry()
    if dataset in table:
        if name in table[dataset]:
            return table[dataset][name]
        if name in aliases[dataset]:
            return table[dataset][aliases[dataset][name]]
    if Path(name).suffix.lower() in SPLIT_FILE_SUFFIXES:
        if Path(name).exists():
            return load_split_file(name, dataset=dataset, class_names=class_names)
        # a file name, not a split name: say the file is missing (not that the split or dataset is unknown)
        raise ConfigError(f"split file {name}: no such file (a split name of the dataset or a path to a "
                          f"{'/'.join(SPLIT_FILE_SUFFIXES)} split file)")
    from .registry import DATASETS
    if dataset not in DATASETS:
        raise unknown_name("dataset", dataset, DATASETS)
    valid = list(table.get(dataset, {})) + [f"<path to a {'/'.join(SPLIT_FILE_SUFFIXES)} split file>"]
    raise unknown_name(f"{dataset} split", name, valid)


# ---------------------------------------------------------------------- user files
SPLIT_FILE_SUFFIXES = (".yaml", ".yml", ".json", ".npy", ".txt")


def load_split_file(path: str | Path, dataset: str | None = None, num_classes: int | None = None,
                    class_names: Sequence[str] | None = None) -> ZeroShotSplit:
    """Read a user split.

    Formats:
        * ``.npy``: 1-D integer array of unseen class ids (0-based).
        * ``.txt``: unseen ids separated by commas / whitespace.
        * ``.yaml`` / ``.json``: a list of unseen classes, or a mapping with ``unseen`` and
          optionally ``seen`` (else all other classes), ``dataset``, ``num_classes``,
          ``name``, ``note``. A class is a 0-based id or, given ``class_names``, its name
          (exactly as in the dataset; ``zeroskel inspect DATASET`` lists them).

    The number of classes comes from ``num_classes``, the file, the dataset registry
    (``dataset`` argument or the file's ``dataset`` key), or ``len(class_names)``, in that order.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split file {path} not found")
    suffix = path.suffix.lower()
    meta: dict = {}
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
            if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
                raise DataError(f"split file {path}: expected a 1-D integer array of unseen class ids, "
                                f"got dtype {arr.dtype} shape {arr.shape}")
            meta["unseen"] = arr.tolist()
        elif suffix == ".txt":
            tokens = path.read_text(encoding="utf-8-sig").replace(",", " ").split()
            bad = next((t for t in tokens if not t.lstrip("+-").isdigit()), None)
            if bad is not None:  # class names (a natural thing to write) were int()'s bare ValueError
                raise DataError(f"split file {path}: {bad!r} is not a class id; a .txt split lists unseen "
                                "class ids (0-based); for class names write a .yaml: 'unseen: [jump up, clap]'")
            meta["unseen"] = [int(t) for t in tokens]
        elif suffix in (".yaml", ".yml", ".json"):
            text = path.read_text(encoding="utf-8")
            if suffix == ".json":
                obj = json.loads(text)
            else:
                from ..engine.config import safe_load  # 'unseen: [010, 012]' was [8, 10]
                obj = safe_load(text, f"split file {path}")
            meta = {"unseen": obj} if isinstance(obj, list) else obj
            if not isinstance(meta, dict) or "unseen" not in meta:
                raise DataError(f"split file {path}: expected a list of unseen ids or a mapping with key "
                                f"'unseen'")
        else:
            raise ConfigError(f"split file {path}: unsupported suffix {path.suffix!r}; use one of "
                              f"{', '.join(SPLIT_FILE_SUFFIXES)}")
    except (ValueError, OSError, UnicodeDecodeError) as e:  # json/yaml/int()/np.load errors
        raise DataError(f"split file {path}: unreadable ({type(e).__name__}: {e})") from None
    except Exception as e:  # yaml.YAMLError without importing yaml at module level
        if type(e).__module__.startswith("yaml"):
            raise DataError(f"split file {path}: invalid YAML ({yaml_problem(e)})") from None
        raise

    ds = meta.get("dataset", dataset) or ""
    if dataset and meta.get("dataset") and meta["dataset"] != dataset:
        raise ConfigError(f"split file {path}: key 'dataset' = {meta['dataset']!r} but it is used with "
                          f"dataset {dataset!r}")
    n = num_classes if num_classes is not None else meta.get("num_classes")
    if n is None:
        from .registry import DATASETS
        if ds in DATASETS:
            n = DATASETS[ds].num_classes
        elif class_names is not None:
            n = len(class_names)
        else:
            raise ConfigError(f"split file {path}: number of classes unknown; give 'num_classes' in the file "
                              f"or a built-in dataset name")
    for key in ("unseen", "seen"):
        if key in meta and meta[key] is not None:
            meta[key] = _class_ids(meta[key], class_names, f"split file {path}: key {key!r}")
    unseen = meta["unseen"]
    seen = meta.get("seen")
    if seen is None:
        seen = sorted(set(range(int(n))) - set(unseen))
    try:
        return ZeroShotSplit(name=str(meta.get("name", path)), dataset=ds, num_classes=int(n),
                             seen=seen, unseen=unseen, source="user", note=str(meta.get("note", "")),
                             file=str(path), kind="user")
    except ConfigError as e:
        raise ConfigError(f"split file {path}: {e}") from None


def _class_ids(vals, class_names: Sequence[str] | None, where: str) -> list[int]:
    """A split file's list of classes as ids: integers stay, names are looked up in ``class_names``."""
    if not isinstance(vals, (list, tuple)):
        raise DataError(f"{where} must be a list of class ids or names")
    ids, unknown = [], []
    index = {name: i for i, name in enumerate(class_names)} if class_names is not None else {}
    for v in vals:
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            ids.append(int(v))
        elif isinstance(v, str) and class_names is not None:
            if v in index:
                ids.append(index[v])
            else:
                unknown.append(v)
        elif isinstance(v, str):
            raise DataError(f"{where}: class name {v!r} given, but the dataset's class names are not known "
                            f"here; give 0-based class ids")
        else:
            raise DataError(f"{where}: {v!r} is neither a class id nor a class name")
    if unknown:
        raise DataError(f"{where}: unknown class name(s) {unknown}; the dataset's classes are "
                        f"{list(class_names)}")
    return ids


def holdout_group(ds, index: np.ndarray, key: str, seed: int,
                  count: int = 1) -> tuple[np.ndarray, np.ndarray, list]:
    """Split ``index`` by metadata group (e.g. subjects or camera views).

    A validation set drawn from the training subjects / views themselves flatters models that
    do not generalise to new people or viewpoints (the test partitions' condition).
    ``ds`` is a :class:`~zeroskel.data.dataset.SkeletonDataset`; ``count`` values of
    ``ds.meta[key]`` among the samples of ``index`` are drawn with ``seed``. Returns
    ``(rest, held, values)``: the sorted indices without and with those values, and the values.
    """
    if key not in ds.meta:
        raise unknown_name(f"metadata key of dataset {ds.name!r} (validation.heldout_group)", key, ds.meta)
    values = np.asarray(ds.meta[key])[index]
    groups = sorted(set(values.tolist()))
    if not (isinstance(count, (int, np.integer)) and 1 <= count < len(groups)):
        raise ConfigError(f"validation.heldout_count={count!r}: the training partition of {ds.name!r} has "
                          f"{len(groups)} {key} value(s) {groups}; hold out at least 1 and fewer than all")
    rng = np.random.default_rng(seed)
    held = sorted(np.asarray(groups, dtype=object)[rng.choice(len(groups), size=count, replace=False)].tolist())
    mask = np.isin(values, held)
    return np.sort(index[~mask]), np.sort(index[mask]), held
