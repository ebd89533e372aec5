"""Class texts (names and descriptions) of every built-in dataset, selectable by name.

The texts are read from ``<data root>/text/`` (never copied into the package; see the
README, "Class texts"); only the UTD-MHAD / NW-UCLA class names live in code. Sources:

* ``name``: class names (NTU/PKU: PGFA's ``text/pgfa/{ntu,pku}_labelmap.txt``);
  ``official`` (NTU): the dataset authors' action names, in code.
* ``pgfa-des`` / ``pgfa-ska`` / ``pgfa-parts``: PGFA's one-sentence definitions, GPT-4
  skeleton-focused descriptions, GAP body-part texts (``text/pgfa/``).
* ``flora-motion`` / ``flora-llm``: Flora's body-motion csv and LLM definitions
  (``text/flora/``).
* ``purls-label``, ``purls-global``, ``purls-<part>`` (head, hands, torso, legs, start,
  middle, end): PURLS GPT-3 descriptions (``text/purls/gpt3_desc.xlsx``).

A source string may combine sources: ``"name+purls-global"`` renders
``"{name}: {purls-global}"`` (the "label: description" prompt), and any string with
``{source}`` fields is a template, e.g. ``"a person doing {name}"``. A path to a text
file (see :func:`load_text_file`) works too.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError, DataError, unknown_name
from ..paths import data_root as resolve_root, looks_like_path

log = logging.getLogger(__name__)

PURLS_PARTS = {"head": "Head", "hands": "Hands", "torso": "Torso", "legs": "Legs",
               "start": "Start", "middle": "Middle", "end": "End"}
PURLS_COLUMNS = {"purls-label": "Action Labels", "purls-global": "Global Desc",
                 **{f"purls-{k}": v for k, v in PURLS_PARTS.items()}}
PURLS_SHEETS = {"ntu60": "NTU-RGB+D", "ntu120": "NTU-RGB+D", "nw_ucla": "NW-UCLA", "utd_mhad": "UTD-MHAD"}
PURLS_FILE = "text/purls/gpt3_desc.xlsx"

_NUM_CLASSES = {"ntu60": 60, "ntu120": 120, "pku_mmd1": 51, "nw_ucla": 10, "utd_mhad": 27}
_TEMPLATE_FIELD = re.compile(r"\{([A-Za-z0-9_-]+)\}")


@dataclass(frozen=True)
class _Source:
    kind: str  # "lines", "csv", "xlsx", "code"
    file: str  # relative to the data root ("" for code)
    where: str  # provenance for humans
    column: str = ""  # xlsx column


def _sources(dataset: str) -> dict[str, _Source]:
    pgfa = "PGFA repository (kaai520/PGFA), descriptions/ (MIT)"
    flora = "Flora repository (cseeyangchen/Flora), semantics/"
    purls = "PURLS repository (azzh1/PURLS), GPT-3 descriptions (BSD-3)"
    out: dict[str, _Source] = {}
    if dataset in ("ntu60", "ntu120", "pku_mmd1"):
        ntu = dataset != "pku_mmd1"
        out["name"] = _Source("lines", f"text/pgfa/{'ntu' if ntu else 'pku'}_labelmap.txt", pgfa)
        if ntu:
            out["official"] = _Source("code", "", "zeroskel.data.classnames (the NTU authors' action list)")
        out["pgfa-des"] = _Source("lines", f"text/pgfa/{dataset if ntu else 'pku'}_des.txt", pgfa)
        out["pgfa-ska"] = _Source("lines", f"text/pgfa/{'ntu' if ntu else 'pku'}_ska_gpt4.txt", pgfa)
        if ntu:
            out["pgfa-parts"] = _Source("lines", "text/pgfa/ntu_parts_from_GAP.txt", pgfa + " (from GAP)")
        fl = dataset if ntu else "pku51"
        out["flora-motion"] = _Source("csv", f"text/flora/{fl}.csv", flora)
        out["flora-llm"] = _Source("lines", f"text/flora/{fl}_llm.txt", flora)
    elif dataset in ("nw_ucla", "utd_mhad"):
        out["name"] = _Source("code", "", "zeroskel.data.readers.small (dataset documentation)")
    else:
        from ..data.registry import DATASETS
        if dataset in DATASETS:  # readable (e.g. pku_mmd2) but no method repository ships its texts
            raise ConfigError(f"{dataset} has no registered class texts; set text.source to a file with one "
                              f"line per class, in class-id order (docs/custom_format.md, 'Training on it')")
        raise unknown_name("dataset with class texts", dataset, _NUM_CLASSES)
    if dataset in PURLS_SHEETS:
        for name, col in PURLS_COLUMNS.items():
            out[name] = _Source("xlsx", PURLS_FILE, f"{purls}, sheet {PURLS_SHEETS[dataset]!r}", col)
    return out


def class_text_sources(dataset: str) -> dict[str, str]:
    """Text sources of a dataset: name -> file under the data root (or where it comes from).

    Combinations (``"name+purls-global"``), templates and user files are accepted on top.
    """
    return {k: (s.file or s.where) for k, s in _sources(dataset).items()}


def _read_text(path: Path) -> str:
    """A text file as UTF-8 (a BOM dropped); UTF-16 with its BOM (Windows Notepad's "Unicode")
    too. Anything else that is not UTF-8 is an error naming the line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"class text file {path} not found") from None
    except OSError as e:
        raise DataError(f"class text file {path}: unreadable ({e})") from None
    encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataError(f"class text file {path}: line {line} is not {encoding.split('-sig')[0].upper()} text "
                        f"({e.reason} at byte {e.start}); save the file as UTF-8") from None


def _read_lines(path: Path) -> list[str]:
    # only \n, \r\n and \r end a line, as in an editor: str.splitlines also splits at U+2028,
    # \x85 or \x0c inside a text, which would shift every later class by one
    lines = _read_text(path).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[-1].strip():  # trailing newlines only; inner blanks are errors
        lines.pop()
    return [line.strip() for line in lines]


def _check(texts: list[str], path, num_classes: int | None, what: str = "lines") -> list[str]:
    empty = [i for i, t in enumerate(texts) if not t]
    if empty:
        raise DataError(f"class text file {path}: empty text for class ids {empty[:10]} "
                        f"({what} {', '.join(str(i + 1) for i in empty[:10])})")
    if num_classes is not None and len(texts) != num_classes:
        raise DataError(f"class text file {path}: {len(texts)} {what} for {num_classes} classes")
    return texts


def _read_csv(path: Path, num_classes: int | None, class_names=None) -> list[str]:
    """csv with a header: one text column (``text``/``label``/``description``) and optionally
    an id column, ``idx`` (1-based, Flora's convention) or ``class_id`` (0-based), or, when
    the dataset's ``class_names`` are given, a class-name column (``name``/``class_name``/
    ``class``) that places each row, in any order; without either, row i is class i."""
    text = _read_text(path)
    # a space after a comma ('id, text' / '0, "raise, then wave"') is not part of the field: with
    # it, a header ' text' was not found and a quoted text with a comma was split at the comma
    rows = list(csv.DictReader(io.StringIO(text), skipinitialspace=True))
    for i, r in enumerate(rows, 2):
        if None in r:  # DictReader's key for fields beyond the header
            raise DataError(f"class text file {path}: line {i} has more fields than the header "
                            "(a comma inside a text needs quotes: \"drop trash, then walk away\")")
    cols = rows[0].keys() if rows else []
    text_cols = [c for c in ("text", "label", "description") if c in cols]
    if not text_cols:
        raise DataError(f"class text file {path}: no 'text', 'label' or 'description' column "
                        f"(columns: {list(cols)})")
    if len(text_cols) > 1:  # 'label,description': the label is likely the class name, not the text
        raise DataError(f"class text file {path}: columns {' and '.join(repr(c) for c in text_cols)} could "
                        "each be the text; keep one of them for the text and name a class-name column "
                        "'name' (columns: {})".format(list(cols)))
    text_col = text_cols[0]
    id_col = next((c for c in ("class_id", "idx") if c in cols), None)
    name_col = next((c for c in ("name", "class_name", "class") if c in cols and c != text_col), None)
    if id_col is None and name_col is not None and class_names is not None:
        return _by_name({(r[name_col] or "").strip(): (r[text_col] or "").strip() for r in rows},
                        [(f"line {i}", (r[name_col] or "").strip()) for i, r in enumerate(rows, 2)],
                        path, class_names, f"column {name_col!r}")
    if id_col is None:
        return _check([(r[text_col] or "").strip() for r in rows], path, num_classes, "rows")
    base = 1 if id_col == "idx" else 0
    by_id: dict[int, str] = {}
    for i, r in enumerate(rows, 2):
        try:
            cid = int(r[id_col]) - base
        except (TypeError, ValueError):
            raise DataError(f"class text file {path}: line {i}: {id_col}={r[id_col]!r} is not an integer") from None
        if cid in by_id:
            raise DataError(f"class text file {path}: line {i}: duplicate {id_col} {cid + base}")
        by_id[cid] = (r[text_col] or "").strip()
    n = num_classes if num_classes is not None else len(by_id)
    missing = sorted(set(range(n)) - set(by_id))
    extra = sorted(set(by_id) - set(range(n)))
    if missing or extra:
        raise DataError(f"class text file {path}: {id_col} must cover {base}..{n - 1 + base} exactly "
                        f"(missing {[m + base for m in missing][:10]}, unexpected {[e + base for e in extra][:10]})")
    return _check([by_id[i] for i in range(n)], path, n, "rows")


def _name_lists(class_names) -> list[list[str]]:
    """The dataset's class names as one or more alternative lists (class-id order each): a list,
    or (a built-in dataset) a callable giving its lists, read only when a file is keyed by name."""
    lists = class_names() if callable(class_names) else [class_names]
    return [[str(n) for n in names] for names in lists]


def _by_name(texts: dict[str, str], rows: list[tuple[object, str]], path, class_names, what: str) -> list[str]:
    """Texts keyed by class name -> the list in class-id order; every name once, all known.

    ``class_names``: see :func:`_name_lists`; the first list holding every name of the file
    places the rows (a built-in dataset's names come in more than one spelling); else the
    closest one names what is wrong."""
    lists = _name_lists(class_names)
    file_names = {n for _, n in rows}
    names = max(lists, key=lambda ns: len(file_names & set(ns)))  # the first with all, else the closest
    counts = Counter(n for _, n in rows)
    twice = [n for n, c in counts.items() if c > 1]
    if twice:
        raise DataError(f"class text file {path}: {what} names {twice[:5]} more than once")
    unknown = [(where, n) for where, n in rows if n not in names]
    if unknown:
        where, n = unknown[0]
        raise DataError(f"class text file {path}: {what}: {n!r} (at {where}) is not a class name of the "
                        f"dataset ({', '.join(repr(x) for x in names[:10])}{', ...' if len(names) > 10 else ''})")
    missing = [n for n in names if n not in texts]
    if missing:
        raise DataError(f"class text file {path}: {what}: no text for classes {missing[:10]}")
    return _check([texts[n] for n in names], path, len(names), "classes")


def load_text_file(path: str | os.PathLike, num_classes: int | None = None,
                   class_names: "list[str] | tuple[str, ...] | None" = None) -> list[str]:
    """Read user class texts; entry i = class id i.

    Formats: ``.txt`` (one line per class), ``.csv`` (see above), ``.json`` (a list of
    strings, or an object mapping 0-based class ids to strings).

    With ``class_names`` (the dataset's names, class-id order), a ``.csv`` with a
    ``name`` / ``class_name`` / ``class`` column and no id column, and a ``.json`` object
    keyed by class names, are placed by name, in any row order; a name that is not a class
    is an error.

    Raises :class:`DataError` naming the file for a wrong count or an empty text.
    """
    if class_names is not None and num_classes is None:
        num_classes = len(class_names)
    return _user_file(path, num_classes, None if class_names is None else list(class_names))


def _user_file(path, num_classes: int | None, class_names) -> list[str]:
    """:func:`load_text_file`, ``class_names`` also a callable (see :func:`_name_lists`)."""
    texts = _load_text_file(Path(path).expanduser(), num_classes, class_names)
    seen: dict[str, int] = {}
    for i, t in enumerate(texts):
        if t in seen:  # allowed (some published texts repeat), but usually a copy-paste slip
            log.warning("class text file %s: classes %d and %d have the same text %r", path, seen[t], i, t)
        seen.setdefault(t, i)
    return texts


def _load_text_file(path: Path, num_classes: int | None, class_names=None) -> list[str]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, num_classes, class_names)
    if suffix == ".json":
        def no_repeats(pairs):  # json.loads keeps the last of repeated keys, silently
            twice = sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
            if twice:
                raise DataError(f"class text file {path}: repeated keys {twice[:10]}")
            return dict(pairs)

        text = _read_text(path)
        try:
            obj = json.loads(text, object_pairs_hook=no_repeats)
        except json.JSONDecodeError as e:
            raise DataError(f"class text file {path}: unreadable JSON ({e})") from None
        if isinstance(obj, dict) and class_names is not None and obj and not all(
                isinstance(k, str) and k.strip().lstrip("-").isdigit() for k in obj):
            if not all(isinstance(v, str) for v in obj.values()):
                raise DataError(f"class text file {path}: expected a class name -> string object")
            return _by_name({k.strip(): v.strip() for k, v in obj.items()},
                            [(f"key {k!r}", k.strip()) for k in obj], path, class_names, "keys")
        if isinstance(obj, dict):
            try:
                ids = [int(k) for k in obj]
            except ValueError:
                raise DataError(f"class text file {path}: keys must be 0-based class ids") from None
            counts = Counter(ids)
            if len(counts) != len(ids):  # "3" and "03"
                raise DataError(f"class text file {path}: keys {sorted(k for k in obj if counts[int(k)] > 1)} "
                                "name the same class id")
            by_id = dict(zip(ids, obj.values()))
            n = num_classes if num_classes is not None else len(by_id)
            if set(by_id) != set(range(n)):
                raise DataError(f"class text file {path}: keys must be exactly 0..{n - 1}, got "
                                f"{sorted(by_id)[:10]}{'...' if len(by_id) > 10 else ''}")
            obj = [by_id[i] for i in range(n)]
        if not isinstance(obj, list) or not all(isinstance(t, str) for t in obj):
            raise DataError(f"class text file {path}: expected a list of strings or an id -> string object")
        return _check([t.strip() for t in obj], path, num_classes, "entries")
    if suffix in (".txt", ""):
        return _check(_read_lines(path), path, num_classes)
    raise ConfigError(f"class text file {path}: unsupported suffix {path.suffix!r} (use .txt, .csv or .json)")


@lru_cache(maxsize=8)
def _xlsx_rows(path: str, mtime_ns: int, size: int, sheet: str) -> tuple:
    """Rows of one sheet; cached per file version (PURLS uses all 8 columns of a sheet)."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises zipfile / KeyError / InvalidFileException
        raise DataError(f"class text file {path}: unreadable workbook ({type(e).__name__}: {e})") from None
    try:
        if sheet not in wb.sheetnames:
            raise DataError(f"class text file {path}: no sheet {sheet!r} (sheets: {wb.sheetnames})")
        return tuple(wb[sheet].iter_rows(values_only=True))
    finally:
        wb.close()


def _read_purls(path: Path, sheet: str, column: str, n: int, prefix: bool = False) -> list[str]:
    if not path.is_file():
        raise DataError(f"class text file {path} not found (PURLS GPT-3 descriptions, gpt3_desc.xlsx)")
    st = path.stat()
    rows = _xlsx_rows(str(path), st.st_mtime_ns, st.st_size, sheet)
    header = [str(h).strip() if h is not None else "" for h in rows[0]] if rows else []
    if column not in header:
        raise DataError(f"class text file {path}, sheet {sheet!r}: no column {column!r} (columns: {header})")
    j = header.index(column)
    body = list(rows[1:])
    while body and all(v is None for v in body[-1]):
        body.pop()
    texts = [str(r[j]).strip() if j < len(r) and r[j] is not None else "" for r in body]
    where = f"{path} (sheet {sheet!r}, column {column!r})"
    if prefix and len(texts) >= n:  # NTU-60 = the first 60 rows of the NTU-RGB+D sheet
        texts = texts[:n]
    return _check(texts, where, n, "rows")


def _load_one(dataset: str, source: str, root_arg, n: int) -> list[str]:
    sources = _sources(dataset)
    if source not in sources:
        raise unknown_name(f"class text source of {dataset}", source,
                           list(sources) + ["A+B", "template with {source} fields", "<path to .txt/.csv/.json>"])
    s = sources[source]
    if s.kind == "code":
        if dataset in ("ntu60", "ntu120"):
            from ..data.classnames import NTU120_CLASSES
            return list(NTU120_CLASSES[:n])
        from ..data.readers.small import NW_UCLA_CLASSES, UTD_MHAD_CLASSES
        return list(UTD_MHAD_CLASSES if dataset == "utd_mhad" else NW_UCLA_CLASSES)
    root = resolve_root(root_arg)
    path = root / s.file
    if s.kind == "xlsx":
        return _read_purls(path, PURLS_SHEETS[dataset], s.column, n, prefix=dataset == "ntu60")
    if not path.is_file():
        raise DataError(f"class text file {path} not found: source {source!r} of {dataset} comes from the "
                        f"{s.where}; put it under <data root>/{s.file}")
    if s.kind == "csv":
        texts = _read_csv(path, None)
    else:
        texts = _check(_read_lines(path), path, None)
    # Shared NTU files list all 120 classes; NTU-60 is their first 60.
    if dataset == "ntu60" and len(texts) == 120:
        texts = texts[:60]
    return _check(texts, path, n)


def load_class_texts(dataset: str, source: str = "name",
                     data_root: str | os.PathLike | None = None,
                     class_names: "list[str] | tuple[str, ...] | None" = None) -> list[str]:
    """Class texts of a dataset; entry i = class id i.

    Args:
        dataset: ``ntu60``, ``ntu120``, ``pku_mmd1``, ``nw_ucla`` or ``utd_mhad``; or any
            other dataset (e.g. a custom-format path) together with ``class_names``.
        source: a source name (:func:`class_text_sources`), ``"A+B"`` (rendered
            ``"{A}: {B}"``), a template with ``{source}`` fields, or a path to a user file.
            A dataset outside the registry has one source, ``name`` (its ``class_names``):
            ``"a person doing {name}"`` or a text file give it richer texts.
        data_root: the data root (default ``$ZEROSKEL_DATA``); not needed for the
            UTD-MHAD / NW-UCLA names.
        class_names: the dataset's class names; required for a dataset outside the registry.
            A built-in one knows its names and counts; a user file keyed by class name
            (``.csv`` with a ``name`` column, ``.json`` keyed by names) is placed by its
            ``name`` source, its ``official`` names (NTU) or these.

    Returns:
        ``num_classes`` non-empty strings.
    """
    if dataset in _NUM_CLASSES:
        n = _NUM_CLASSES[dataset]

        def one(src: str, template: str | None = None) -> list[str]:
            return _load_one(dataset, src, data_root, n)
    elif class_names is None:
        _sources(dataset)  # raises the unknown-name error
    else:
        names = list(class_names)
        n = len(names)

        def one(src: str, template: str | None = None) -> list[str]:
            return _custom_one(dataset, src, names, template)
    # A path is recognised before "A+B", so that a missing "my+texts.txt" is reported as a
    # missing file, not as unknown sources "my" and "texts.txt".
    looks_like_file = Path(source).suffix.lower() in (".txt", ".csv", ".json") or looks_like_path(source)
    if "{" in source or "}" in source:
        template = source
    elif looks_like_file or ("+" in source and Path(source).exists()):
        if dataset in _NUM_CLASSES:  # a file keyed by class name is placed by the dataset's names
            return _user_file(source, n, lambda: _builtin_names(dataset, data_root, n, class_names))
        return _user_file(source, n, names)
    elif "+" in source:
        parts = [part.strip() for part in source.split("+")]
        if not all(parts):
            raise ConfigError(f"class text source {source!r}: an empty source beside a '+' "
                              "(A+B joins two sources, e.g. name+purls-global)")
        template = ": ".join("{" + part + "}" for part in parts)
    else:
        return one(source)
    fields = _TEMPLATE_FIELD.findall(template)
    stray = _TEMPLATE_FIELD.sub("", template)
    if not fields or "{" in stray or "}" in stray:
        raise ConfigError(f"class text template {source!r}: " + ("no {source} field" if not fields else "unbalanced braces")
                          + (" (a '{' or '}' outside a field; a field is written {source}, e.g. "
                             "'a person doing {name}')" if "{" in stray or "}" in stray else ""))
    values = {f: one(f, source) for f in dict.fromkeys(fields)}
    return [_TEMPLATE_FIELD.sub(lambda m: values[m.group(1)][i], template) for i in range(n)]


def _builtin_names(dataset: str, data_root, n: int, class_names) -> list[list[str]]:
    """The class names of a built-in dataset, in each spelling a user's file may key its texts
    by: the ``name`` source, the NTU authors' ``official`` names, and the caller's
    ``class_names`` (e.g. a reader's). A list that cannot be read (no data root) is skipped."""
    lists, errors = [], []
    for src in ("name", "official"):
        if src in _sources(dataset):
            try:
                lists.append(_load_one(dataset, src, data_root, n))
            except DataError as e:
                errors.append(e)
    if class_names is not None and len(class_names) == n:
        lists.append([str(c) for c in class_names])
    if not lists:
        raise errors[0]
    return [ns for i, ns in enumerate(lists) if ns not in lists[:i]]


def _custom_one(dataset: str, source: str, names: list[str], template: str | None) -> list[str]:
    """The one source of a dataset outside the registry: ``name``, its class names."""
    if source == "name":
        return _check(list(names), f"{dataset} (class_names)", len(names), "class names")
    if template is not None and "{" not in template:  # an "A+B" combination, not a template
        raise ConfigError(f"class text source {template!r} for {dataset}: {source!r} is not a source of a "
                          "dataset outside the registry, whose only source is 'name' (or a template with "
                          "{name}, or a text file of yours)")
    if template is not None:
        raise ConfigError(f"class text template {template!r} for {dataset}: only the {{name}} field is "
                          f"available for a dataset outside the registry (got {source!r})")
    raise unknown_name(f"class text source of {dataset}", source,
                       ["name", "template with {name}", "<path to .txt/.csv/.json>"])
