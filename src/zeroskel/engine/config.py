"""Run configurations: YAML files, named presets and ``key.sub=value`` overrides.

A method's configuration schema is its ``configs/<method>/base.yaml``: every key a run may
set appears there with its default. Presets (``configs/<method>/<preset>.yaml``) and user
files are merged over it; a key that is not in the base is an error naming the key and the
file (or flag) it came from, so a typo never silently does nothing.

Typical use (what ``zeroskel train`` does)::

    cfg = build_config("pgfa", dataset="utd_mhad", split="purls-22/5", seed=1,
                       config_file=None, overrides=["train.epochs=30"])
"""
from __future__ import annotations

import copy
import difflib
import re
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import yaml

from ..errors import ConfigError, unknown_name, yaml_problem
from ..paths import looks_like_path

BASE_NAME = "base"


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the scalars that YAML 1.1 and YAML 1.2 read differently settled.

    PyYAML follows YAML 1.1, which users do not expect of a number or a word they type:

    * ``1e-4`` (no dot) and ``-.5`` were the texts ``'1e-4'`` and ``'-.5'``: here they are
      floats, as in YAML 1.2;
    * ``010`` was the octal number 8, ``1:30`` the base-60 number 90, ``yes`` / ``no`` /
      ``on`` / ``off`` were booleans, while YAML 1.2 reads them as 10, text and text: such a
      plain (unquoted) scalar is refused, naming its key (:func:`ambiguous_scalar`); quoted it is
      text, and ``10`` / ``true`` say the number or the boolean;
    * ``2024-01-01`` was a date object and ``=`` an error: both are text, as in YAML 1.2.

    Only ``true`` / ``false`` (any case form YAML 1.2 allows) are booleans. ``1_000`` stays
    1000 (the number a Python user means). Quoted scalars are always text.
    """


_AMBIGUOUS = "tag:zeroskel,2026:ambiguous"
_SEXAGESIMAL = r"[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*"
_LEADING_ZERO = r"[-+]?0[0-9_]+"
_YES_NO = r"yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF"
_ConfigLoader.yaml_implicit_resolvers = {  # a copy without YAML 1.1's dates and '=' (SafeLoader is unchanged)
    ch: [(tag, rx) for tag, rx in entries if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value")]
    for ch, entries in yaml.SafeLoader.yaml_implicit_resolvers.items()}
for _ch in "yYnNoO-+0123456789":  # checked before the bool / int / float resolvers of the same first character
    _ConfigLoader.yaml_implicit_resolvers.setdefault(_ch, []).insert(
        0, (_AMBIGUOUS, re.compile(f"^(?:{_YES_NO}|{_LEADING_ZERO}|{_SEXAGESIMAL})$")))
_ConfigLoader.add_implicit_resolver(  # 1e-4 and -.5 / +.5 (text in YAML 1.1, numbers in 1.2)
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+|[-+]\.[0-9][0-9_]*)$"),
    list("-+0123456789."))


def _refuse_duplicate_keys(loader: _ConfigLoader, node, deep: bool = False) -> dict:
    """A mapping that gives one key twice is an error: YAML forbids it, and PyYAML kept the last,
    so a config file with two ``train:`` sections silently lost the first one's settings."""
    if isinstance(node, yaml.MappingNode):
        first: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *base' may repeat keys on purpose
                continue
            key = loader.construct_object(key_node, deep=True)
            mark = key_node.start_mark
            try:
                earlier = first.setdefault(key, mark)
            except TypeError:  # an unhashable key: PyYAML's own error follows
                continue
            if earlier is not mark:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (also at line {earlier.line + 1}, column "
                    f"{earlier.column + 1}); give it once", mark)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_ConfigLoader.construct_mapping = _refuse_duplicate_keys


class _Ambiguous(str):
    """A plain scalar that YAML 1.1 and 1.2 read differently (found and refused after loading)."""


_ConfigLoader.add_constructor(_AMBIGUOUS, lambda loader, node: _Ambiguous(loader.construct_scalar(node)))


def _why_ambiguous(text: str) -> str:
    if re.fullmatch(_YES_NO, text):
        return (f"{text} is a boolean in YAML 1.1 but text in YAML 1.2: write true or false, "
                "or put text in quotes")
    old = yaml.safe_load(text)  # what YAML 1.1 (PyYAML) makes of it
    if re.fullmatch(_LEADING_ZERO, text):
        as_11 = f"the octal number {old}" if isinstance(old, int) else "text"
        return (f"{text} has a leading zero, which YAML 1.1 reads as {as_11}: write "
                f"{int(text.replace('_', ''))} for the number, or put text in quotes")
    return (f"{text} is the base-60 number {old} in YAML 1.1 but text in YAML 1.2: put a time or a "
            "ratio in quotes, or write the number")


def ambiguous_scalar(data: Any, path: str = "") -> tuple[str, str] | None:
    """``(dotted key, reason)`` of the first scalar in ``data`` (keys included) that
    :class:`_ConfigLoader` refuses, else None; list items are named ``key[i]``."""
    if isinstance(data, _Ambiguous):
        return path, _why_ambiguous(str(data))
    items = (data.items() if isinstance(data, dict)
             else ((f"[{i}]", v) for i, v in enumerate(data)) if isinstance(data, list) else ())
    for k, v in items:
        if isinstance(k, _Ambiguous):
            return (f"{path}.{k}" if path else str(k),
                    f"the key {k} is read differently by YAML 1.1 and YAML 1.2; put it in quotes")
        sub = f"{path}{k}" if str(k).startswith("[") else (f"{path}.{k}" if path else str(k))
        found = ambiguous_scalar(v, sub)
        if found:
            return found
    return None


def safe_load(text: str, where: str = "YAML") -> Any:
    """``yaml.safe_load`` for configs, by :class:`_ConfigLoader`'s rules; a scalar that YAML 1.1
    and 1.2 read differently is a :class:`ConfigError` naming ``where`` (the file) and its key."""
    data = yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 (a SafeLoader subclass)
    found = ambiguous_scalar(data)
    if found:
        key, why = found
        raise ConfigError(f"{where}: {key or 'the value'}: {why}")
    return data


def _config_dir(method: str):
    return resources.files("zeroskel") / "configs" / method


def available_methods() -> list[str]:
    """Methods that ship a ``configs/<method>/base.yaml``."""
    root = resources.files("zeroskel") / "configs"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / f"{BASE_NAME}.yaml").is_file())


def available_presets(method: str) -> list[str]:
    """Preset names of a method (file stems of ``configs/<method>/*.yaml`` except the base)."""
    d = _config_dir(method)
    if not d.is_dir():
        raise unknown_name("method", method, available_methods())
    return sorted(p.name[:-5] for p in d.iterdir() if p.name.endswith(".yaml") and p.name != f"{BASE_NAME}.yaml")


def _read_yaml(text: str, where: str) -> dict:
    try:
        data = safe_load(text, where)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: invalid YAML ({yaml_problem(e)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a config file must be a mapping of keys, got {type(data).__name__}")
    return data


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping from a file; :class:`ConfigError` naming the file if it is bad."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ConfigError(f"config file {path}: cannot read ({e.strerror or e})") from None
    return _read_yaml(text, f"config file {path}")


def load_base(method: str) -> dict:
    """The full default configuration (the schema) of ``method``."""
    f = _config_dir(method) / f"{BASE_NAME}.yaml"
    if not f.is_file():
        raise unknown_name("method", method, available_methods())
    return _read_yaml(f.read_text(encoding="utf-8"), f"built-in config {method}/{BASE_NAME}.yaml")


def load_preset(method: str, preset: str) -> dict:
    f = _config_dir(method) / f"{preset}.yaml"
    if preset == BASE_NAME or not f.is_file():
        raise unknown_name(f"{method} preset", preset, available_presets(method))
    return _read_yaml(f.read_text(encoding="utf-8"), f"preset {method}/{preset}.yaml")


def open_sections(schema: dict, prefix: str = "") -> frozenset[str]:
    """Dotted paths of the schema's empty mappings (e.g. ``model.args``): they take any keys."""
    out: set[str] = set()
    for key, val in schema.items():
        if isinstance(val, dict):
            out |= {f"{prefix}{key}"} if not val else open_sections(val, f"{prefix}{key}.")
    return frozenset(out)


def _deep_update(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, val in update.items():
        out[key] = (_deep_update(out[key], val) if isinstance(out.get(key), dict) and isinstance(val, dict)
                    else copy.deepcopy(val))
    return out


def merge(base: dict, update: dict, where: str, prefix: str = "",
          open_paths: frozenset[str] | None = None) -> dict:
    """Recursively merge ``update`` into a copy of ``base``; only keys of ``base`` are allowed.

    A mapping in ``base`` must be updated by a mapping; a leaf may take any value (values
    are checked by the method). An *open* section, one listed in ``open_paths`` (the schema's
    :func:`open_sections`), takes any keys; it stays open after a first merge has filled it, so
    ``--set model.args.channels=...`` and ``--set model.args.strides=...`` combine. Without
    ``open_paths``, ``base`` is taken as the schema. ``where`` names the source (file / flag)
    in errors.
    """
    if open_paths is None:
        open_paths = open_sections(base, prefix)
    out = copy.deepcopy(base)
    for key, val in update.items():
        full = f"{prefix}{key}"
        if key not in base:
            close = [k for k in base if k.lower().startswith(str(key)[:3].lower())]
            hint = f" (did you mean {', '.join(prefix + c for c in close)}?)" if close else ""
            raise ConfigError(f"{where}: unknown config key {full!r}{hint}; valid keys here: "
                              f"{', '.join(prefix + k for k in base)}")
        if isinstance(base[key], dict):
            is_open = full in open_paths
            if val is None and is_open:  # ``--set model.args=null`` (and older run configs): none
                out[key] = {}
                continue
            if not isinstance(val, dict):
                raise ConfigError(f"{where}: config key {full!r} is a section; give sub-keys "
                                  f"({', '.join(full + '.' + k for k in base[key])}), not {val!r}")
            out[key] = (_deep_update(base[key], val) if is_open
                        else merge(base[key], val, where, prefix=full + ".", open_paths=open_paths))
        else:
            out[key] = copy.deepcopy(val)
    return out


def parse_override(item: str, flag: str = "--set") -> dict:
    """``"train.lr=0.01"`` -> ``{"train": {"lr": 0.01}}`` (the value is parsed as YAML);
    ``flag`` names the option in errors (``--set``, ``--align``)."""
    if "=" not in item:
        raise ConfigError(f"{flag} {item!r}: expected key=value, e.g. "
                          f"{'alpha=0.5' if flag == '--align' else 'train.lr=0.01'}")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ConfigError(f"{flag} {item!r}: empty key")
    quote = ("; a text value with YAML characters ({ } [ ] : #) goes in quotes: "
             f"{flag} \"{key}='...'\"")
    try:
        val = yaml.load(raw, Loader=_ConfigLoader) if raw.strip() != "" else None  # noqa: S506
    except yaml.YAMLError as e:
        raise ConfigError(f"{flag} {item!r}: value is not valid YAML ({yaml_problem(e)}){quote}") from None
    found = ambiguous_scalar(val)
    if found:  # 'train.epochs=010' was 8, 'x=1:30' was 90
        sub, why = found
        name = key + ("" if not sub else sub if sub.startswith("[") else "." + sub)
        example = f": {flag} \"{key}='{raw.strip()}'\"" if not sub else ""
        raise ConfigError(f"{flag} {item!r}: {name}: {why}{example}")
    if isinstance(val, dict) and val and all(v is None for v in val.values()) and raw.lstrip().startswith("{"):
        # '{name}' is a YAML mapping {name: null}, never a config value: a text template meant as text
        raise ConfigError(f"{flag} {item!r}: {raw.strip()} reads as a YAML mapping with no values{quote}")
    out: dict = {}
    cur = out
    parts = key.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = val
    return out


def get(cfg: dict, key: str, default: Any = None) -> Any:
    """Dotted lookup: ``get(cfg, "train.lr")``."""
    cur: Any = cfg
    for p in key.split("."):
        if not isinstance(cur, dict) or p not in cur:
            return default
        cur = cur[p]
    return cur


def merge_layer(cfg: dict, layer: dict, where: str, dataset: str | None,
                open_paths: frozenset[str] | None = None) -> dict:
    """Merge a preset or config file, then its ``per_dataset`` block for ``dataset``.

    ``per_dataset: {nw_ucla: {train: {epochs: 20}}}`` lets one preset carry what differs
    between the datasets it serves. The block is applied right after its own layer (so a
    later config file, argument or ``--set`` still wins) and is not kept in the result:
    the resolved config holds the values it set, and re-reading a run's config.yaml does not
    apply it a second time.
    """
    layer = dict(layer)
    blocks = layer.pop("per_dataset", None) or {}
    if not isinstance(blocks, dict) or not all(isinstance(b, dict) for b in blocks.values()):
        raise ConfigError(f"{where}: per_dataset must map dataset names to config sections, got {blocks!r}")
    from ..data.registry import DATASETS

    for name in blocks:  # 'utd-mhad' matched no dataset: the block was skipped without a word
        if str(name) not in DATASETS and not Path(str(name)).exists():
            close = difflib.get_close_matches(str(name).lower().replace("-", "_"), list(DATASETS), n=1, cutoff=0.86)
            if close:
                raise ConfigError(f"{where}: per_dataset.{name} names no dataset (did you mean {close[0]}?); "
                                  f"built-in datasets: {', '.join(DATASETS)}")
    cfg = merge(cfg, layer, where, open_paths=open_paths)
    if dataset is not None and str(dataset) in blocks:
        cfg = merge(cfg, blocks[str(dataset)], f"{where} per_dataset.{dataset}", open_paths=open_paths)
    return cfg


def build_config(method: str = "pgfa", *, dataset: str | None = None, split: str | None = None,
                 seed: int | None = None, config: str | Path | None = None,
                 overrides: Iterable[str] = (), preset: str | None = None,
                 device: str | None = None, data_root: str | Path | None = None,
                 config_file: str | Path | None = None) -> dict:
    """Resolve a run configuration.

    Order (later wins): ``base.yaml`` < preset < its ``per_dataset`` block for the dataset <
    config file < its ``per_dataset`` block < the explicit arguments (dataset, split, seed,
    device, data_root) < ``overrides`` (``key.sub=value`` strings).

    Args:
        config: a YAML file path, or the name of a preset of ``method`` (``--config``).
        preset: a preset name (alternative to ``config``).
        config_file: a YAML file path (alternative to ``config``).

    The preset is the explicit one, else a ``--set preset=NAME`` override, else the ``preset``
    key of the config file, else the dataset's default preset (the ``dataset_presets`` mapping of
    ``base.yaml``, as a config file or ``--set dataset_presets.<dataset>=NAME`` changes it), else
    none. A ``preset`` given as null (``--set preset=null``, ``preset: null`` in the file) means no
    preset: ``base.yaml`` and what the file and overrides say. The dataset that picks the
    preset and its ``per_dataset`` blocks is the one the run gets (``--set dataset=`` wins).
    """
    base = load_base(method)
    if config is not None:
        c = str(config)
        if c.endswith((".yaml", ".yml")) or Path(c).is_file() or looks_like_path(c):
            config_file = config
        elif preset is None:
            preset = c
    if config_file is not None and not Path(config_file).exists() and Path(config_file).stem in available_presets(method) \
            and Path(config_file).parent == Path("."):
        raise ConfigError(f"config file {config_file}: no such file; the {method} preset is named without "
                          f"'.yaml': --config {Path(config_file).stem}")
    file_cfg = load_yaml(config_file) if config_file is not None else {}
    over = [parse_override(o) for o in overrides]

    def last_set(key: str) -> tuple[bool, Any]:
        """(given, value) of the last ``--set key=...``."""
        for o in reversed(over):
            if key in o:
                return True, o[key]
        return False, None

    # work out the dataset early (the value the run gets: file < argument < --set): it picks
    # the preset and the per_dataset blocks
    given, ds = last_set("dataset")
    if not given:
        ds = dataset if dataset is not None else file_cfg.get("dataset")
    given, set_preset = last_set("preset")
    if given:
        if preset is not None and set_preset != preset:
            raise ConfigError(f"--set preset={set_preset} contradicts the preset {preset!r} given with --config; "
                              "give the preset once")
        name = set_preset
    elif preset is not None:
        name = preset
    elif "preset" in file_cfg:  # null: no preset, as the file says
        name = file_cfg["preset"]
    else:
        defaults = dict(base.get("dataset_presets") or {})
        for layer in (file_cfg, *over):  # the mapping as the run's config will hold it
            if isinstance(layer.get("dataset_presets"), dict):
                defaults.update(layer["dataset_presets"])
        name = defaults.get(ds) if isinstance(ds, str) else None
    cfg, opened = base, open_sections(base)
    if name is not None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"preset must be a preset name of {method} ({', '.join(available_presets(method))}) "
                              f"or null, got {name!r}")
        cfg = merge_layer(cfg, load_preset(method, name), f"preset {method}/{name}.yaml", ds, opened)
        cfg["preset"] = name
    if file_cfg:
        cfg = merge_layer(cfg, file_cfg, f"config file {config_file}", ds, opened)
    explicit = {k: v for k, v in {"dataset": dataset, "split": split, "seed": seed,
                                  "device": device, "data_root": None if data_root is None
                                  else str(data_root)}.items() if v is not None}
    cfg = merge(cfg, explicit, "command line", open_paths=opened)
    for item, o in zip(overrides, over):
        cfg = merge(cfg, o, f"--set {item}", open_paths=opened)
    if cfg.get("method", method) != method:
        raise ConfigError(f"config says method {cfg.get('method')!r} but {method!r} was requested")
    cfg["method"] = method
    _absolute_paths(cfg)
    text = cfg.get("text")
    if isinstance(text, dict) and "source" in text and name is None and not _text_source_given(file_cfg, over):
        from ..data.registry import is_custom
        if isinstance(cfg.get("dataset"), str) and is_custom(cfg["dataset"]):
            # base.yaml's source (pgfa-des) exists only for the built-in datasets; a custom
            # dataset's texts are its class names unless the run names others
            text["source"] = "name"
    return cfg


def _text_source_given(file_cfg: dict, over: list) -> bool:
    """Whether a config file or a ``--set`` names ``text.source``."""
    return any(isinstance(layer.get("text"), dict) and "source" in layer["text"] for layer in (file_cfg, *over))


def _absolute_paths(cfg: dict) -> None:
    """Relative local paths in ``cfg`` (the data root, the cache folder, a custom dataset, a split
    file, class-text files of every text key, a text-model folder) become absolute: the run's
    config.yaml is read again by ``evaluate`` / ``resume`` / ``export``, often from another working
    directory. Names (a registered dataset, a split or text-source name, a template, a known text
    model) are left as they are; run folder names use a path's stem either way."""
    if isinstance(cfg.get("data_root"), str) and cfg["data_root"]:
        cfg["data_root"] = str(Path(cfg["data_root"]).expanduser().resolve())
    data = cfg.get("data")
    if isinstance(data, dict) and isinstance(data.get("cache_dir"), str) and data["cache_dir"]:
        # a relative cache folder: evaluate / resume elsewhere prepared the dataset again, in another place
        data["cache_dir"] = str(Path(data["cache_dir"]).expanduser().resolve())

    def file(value):
        if isinstance(value, str) and value and not Path(value).is_absolute():
            p = Path(value).expanduser()
            if (looks_like_path(value) or p.suffix) and p.exists():
                return str(p.resolve())
        return value

    if "split" in cfg:
        cfg["split"] = file(cfg["split"])
    from ..data.registry import is_custom

    ds = cfg.get("dataset")
    if isinstance(ds, str) and ds and not Path(ds).is_absolute() and is_custom(ds) and Path(ds).expanduser().exists():
        # what the readers take as a custom dataset (registry.is_custom: a path, a .npz, or a folder
        # named bare, '--dataset mine_dir') is stored as a path; a registered name stays a name
        cfg["dataset"] = str(Path(ds).expanduser().resolve())
    text = cfg.get("text")
    if isinstance(text, dict):  # every key that takes class-text sources, not only text.source
        for key in ("source", "train_sources", "segment_sources"):
            src = text.get(key)
            if key in text:
                text[key] = [file(s) for s in src] if isinstance(src, list) else file(src)
        if isinstance(text.get("part_sources"), dict):
            text["part_sources"] = {k: file(v) for k, v in text["part_sources"].items()}
    model = text.get("model") if isinstance(text, dict) else None
    if isinstance(model, str) and model and not Path(model).is_absolute():
        folder = Path(model).expanduser()
        # a known name (all-MiniLM-L6-v2, ...) stays a name; only a model folder here is a path
        if folder.is_dir() and ((folder / "modules.json").is_file() or (folder / "config.json").is_file()):
            text["model"] = str(folder.resolve())


def _value(cfg: dict, key: str):
    """The value at dotted ``key`` (``train.epochs``) of ``cfg``; None if a level is missing."""
    v = cfg
    for part in key.split("."):
        v = v.get(part) if isinstance(v, dict) else None
    return v


def check_bool(cfg: dict, *keys: str) -> None:
    """:class:`ConfigError` naming the first dotted key whose value is not true / false:
    ``bool('maybe')`` is True, so a typo would otherwise switch the option on."""
    for key in keys:
        v = _value(cfg, key)
        if not isinstance(v, bool):
            raise ConfigError(f"{key} must be true or false, got {v!r}")


def check_fraction(cfg: dict, key: str) -> None:
    """:class:`ConfigError` naming dotted ``key`` unless its value is a number in (0, 1)."""
    v = _value(cfg, key)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 < v < 1.0:
        raise ConfigError(f"{key} must be in (0, 1), got {v!r}")


def check_int(cfg: dict, key: str, low: int, allow_none: bool = False) -> None:
    """:class:`ConfigError` naming ``key`` (dotted, e.g. ``train.epochs``) unless its value is an
    integer >= ``low`` (or null with ``allow_none``), so a typo in ``--set`` fails before any
    work with the key named, not as a ValueError deep inside a run. The rule is the encoders'
    and Flora's (``_checks.whole``): a whole float (``2.0``, ``1e2``) is stored back as its int,
    a fraction (1.5) is refused."""
    from .._checks import whole

    n = whole(key, _value(cfg, key), low, none_ok=allow_none)
    *parents, last = key.split(".")
    d = cfg
    for part in parents:
        d = d.get(part) if isinstance(d, dict) else None
    if isinstance(d, dict) and last in d:
        d[last] = n


def validate_config(cfg: dict, method: str, where: str = "config") -> dict:
    """Check a complete config (e.g. a run's saved ``config.yaml``) against the schema."""
    merge(load_base(method), cfg, where)
    return cfg


class _ConfigDumper(yaml.SafeDumper):
    """``yaml.safe_dump``, quoting every text that :class:`_ConfigLoader` *or* YAML 1.1 would read
    as something else: a text ``'1e-4'`` was written bare and read back as the number 0.0001."""


_ConfigDumper.yaml_implicit_resolvers = {
    ch: [*_ConfigLoader.yaml_implicit_resolvers.get(ch, []),
         *[r for r in yaml.SafeDumper.yaml_implicit_resolvers.get(ch, [])
           if r not in _ConfigLoader.yaml_implicit_resolvers.get(ch, [])]]
    for ch in set(_ConfigLoader.yaml_implicit_resolvers) | set(yaml.SafeDumper.yaml_implicit_resolvers)}


def dump_config(cfg: dict, path: str | Path) -> None:
    """Write ``cfg`` as YAML that :func:`load_yaml` (and PyYAML) read back as the same values."""
    Path(path).write_text(yaml.dump(cfg, Dumper=_ConfigDumper, sort_keys=False), encoding="utf-8")
