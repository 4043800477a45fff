"""Read definition files (YAML and Python) into one Definitions, with each object's origin."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import yaml
from pydantic import ValidationError

from featurectl.core.definitions import Definitions, check_references
from featurectl.core.errors import DefinitionError, DefinitionWarning, Interrupted, Problem
from featurectl.core.model import KINDS, MODELS, PLURAL, AnyObject, Feature, object_from_dict
from featurectl.loading.config import CONFIG_FILE, DEFAULT_DEFINITIONS
from featurectl.loading.pydantic_errors import problems_from_validation
from featurectl.loading.strict_yaml import load_yaml, yaml_problem


Origins = dict[tuple[str, str], str]


@dataclass
class _Collector:
    """Gathers objects from many files, reporting duplicates with both files named."""

    root: Path
    objects: dict[str, dict[str, AnyObject]] = field(default_factory=lambda: {k: {} for k in KINDS})
    origins: Origins = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, kind: str, obj: AnyObject, file: str) -> None:
        key = (kind, obj.name)
        if key in self.origins:
            self.problems.append(Problem(
                f"duplicate {kind} name '{obj.name}': defined in {self.origins[key]} and in {file}",
                file=file, kind=kind, name=obj.name, field="name",
                hint="names are unique per kind across the repository; rename or remove one",
            ))
            return
        self.objects[kind][obj.name] = obj
        self.origins[key] = file

    def result(self) -> Definitions:
        objects: dict[str, Any] = {PLURAL[k]: self.objects[k] for k in KINDS}
        return Definitions(**objects)


def discover(root: Path, patterns: list[str]) -> list[Path]:
    """The definition files the patterns match. A pattern reaching outside the repository, or
    a matched file that leads outside it through a symlink, is refused before any file is read:
    no Python from outside the repository is ever run. A pattern matching nothing is a warning."""
    inside = root.resolve()
    found: set[Path] = set()
    problems: list[Problem] = []
    unmatched: list[str] = []
    for pattern in patterns:
        matched = _matches(root, pattern, problems)
        for path in matched:
            if not path.resolve().is_relative_to(inside):
                problems.append(Problem(
                    f"{path.relative_to(root)} leads outside the repository (a symlink to {path.resolve()})",
                    file=str(path.relative_to(root)), hint="copy the file into the repository instead of linking it"))
        found.update(matched)
        if not matched:
            unmatched.append(pattern)
    if problems:
        raise DefinitionError(problems)
    _warn_unmatched(unmatched, found)
    return sorted(found)


def _matches(root: Path, pattern: str, problems: list[Problem]) -> list[Path]:
    def refuse(why: str) -> list[Path]:
        problems.append(Problem(f"definitions pattern {pattern!r} {why}", file=CONFIG_FILE, field="definitions",
                                hint='patterns are relative to the repository, e.g. "features/**/*.yaml"'))
        return []

    if not pattern.strip():
        return refuse("is empty")
    if PurePosixPath(pattern).is_absolute() or PureWindowsPath(pattern).is_absolute() or pattern.startswith("~"):
        return refuse("is absolute")
    if ".." in PurePosixPath(pattern).parts:
        return refuse("reaches outside the repository (..)")
    try:
        return [p for p in root.glob(pattern) if p.is_file() and not p.name.startswith("_")]
    except (ValueError, NotImplementedError) as exc:
        return refuse(f"is not a valid glob: {exc}")


def _warn_unmatched(unmatched: list[str], found: set[Path]) -> None:
    """Warn of a pattern the user wrote that matches nothing, or of a repository with no file at
    all (the default patterns cover YAML and Python; one of them matching nothing is normal)."""
    if not found:
        warnings.warn(DefinitionWarning(
            f"no definition file matches the definitions patterns of {CONFIG_FILE} ({', '.join(unmatched)}): "
            "the repository defines nothing"), stacklevel=3)
        return
    for pattern in unmatched:
        if pattern not in DEFAULT_DEFINITIONS:
            warnings.warn(DefinitionWarning(f"definitions pattern {pattern!r} in {CONFIG_FILE} matches no file"),
                          stacklevel=3)


def load_definitions(root: Path, patterns: list[str], *, check: bool = True) -> tuple[Definitions, Origins]:
    """Load every definition file under `root`; raise DefinitionError listing all problems."""
    collector = _Collector(root)
    for path in discover(root, patterns):
        rel = str(path.relative_to(root))
        loader = _python_file if path.suffix == ".py" else _yaml_file
        loader(path, rel, collector)
    defs = collector.result()
    problems = collector.problems
    if check and not problems:
        problems = check_references(defs, collector.origins)
    if problems:
        raise DefinitionError(problems)
    return defs, collector.origins


def _yaml_file(path: Path, rel: str, collector: _Collector) -> None:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        collector.problems.append(Problem(f"cannot read file: {exc}", file=rel))
        return
    parse_yaml_text(text, rel, collector)


def parse_yaml_text(text: str, rel: str, collector: _Collector) -> None:
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        collector.problems.append(yaml_problem(exc, rel))
        return
    if data is None:
        return
    if not isinstance(data, dict):
        collector.problems.append(Problem(
            "a definition file is a mapping with keys entities, sources, feature_views, feature_services",
            file=rel))
        return
    for key, items in data.items():
        kind = next((k for k in KINDS if PLURAL[k] == key), None)
        if kind is None:
            collector.problems.append(Problem(
                f"unknown top-level key '{key}'", file=rel, field=str(key),
                hint="use entities, sources, feature_views or feature_services"))
            continue
        if items is None:  # `entities:` with nothing under it: a section not filled in yet
            continue
        if not isinstance(items, list):
            collector.problems.append(Problem(f"'{key}' must be a list", file=rel, field=key))
            continue
        for index, item in enumerate(items):
            _add_yaml_object(kind, key, index, item, rel, collector)


def _add_yaml_object(kind: str, key: str, index: int, item: Any, rel: str, collector: _Collector) -> None:
    name = item.get("name") if isinstance(item, dict) else None
    label = name if isinstance(name, str) else f"{key}[{index}]"
    if not isinstance(item, dict):
        collector.problems.append(Problem(f"each entry of '{key}' must be a mapping", file=rel, field=f"{key}[{index}]"))
        return
    try:
        obj = object_from_dict(kind, item)
    except ValidationError as exc:
        collector.problems.extend(problems_from_validation(exc, file=rel, kind=kind, name=label, data=item))
        return
    collector.add(kind, obj, rel)


def _python_file(path: Path, rel: str, collector: _Collector) -> None:
    try:
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        collector.problems.append(Problem(f"cannot read file: {exc}", file=rel))
        return
    exec_python_text(source, path, rel, collector)


def exec_python_text(source: str, path: Path, rel: str, collector: _Collector) -> None:
    """Run a Python definition file as a module; collect every module-level definition object."""
    module_name = f"_featurectl_defs_{abs(hash(rel))}"
    module = importlib.util.module_from_spec(importlib.machinery.ModuleSpec(module_name, None, origin=str(path)))
    module.__file__ = str(path)
    sys.modules[module_name] = module
    try:
        exec(compile(source, str(path), "exec"), module.__dict__)
    except ValidationError as exc:
        line = _line_in(exc, str(path))
        data = _failing_arguments(exc)
        collector.problems.extend(problems_from_validation(
            exc, file=rel, kind=_kind_of_title(exc.title), name=data.get("name"), data=data, line=line))
        return
    except SyntaxError as exc:
        collector.problems.append(Problem(f"syntax error: {exc.msg}", file=rel, line=exc.lineno,
                                          hint="fix the Python syntax"))
        return
    except Interrupted:  # the user pressed Ctrl-C while the file ran: stop, do not blame the file
        raise
    except BaseException as exc:  # a user's file may raise anything, sys.exit() too; report it, never exit
        collector.problems.append(_raised(exc, rel, _line_in(exc, str(path))))
        return
    finally:
        sys.modules.pop(module_name, None)
    classes = {cls: kind for kind in KINDS for cls in MODELS[kind]}
    # One object bound to several names (an alias) is one definition, not a duplicate.
    objects = {id(v): v for v in module.__dict__.values() if type(v) in classes}
    for value in objects.values():
        collector.add(classes[type(value)], value, rel)


def _raised(exc: BaseException, rel: str, line: int | None) -> Problem:
    detail = f": {exc}" if str(exc) else ""
    if isinstance(exc, SystemExit):
        return Problem(f"the file raised SystemExit{detail} (sys.exit() or exit() ends the import)", file=rel,
                       line=line, hint="definition files are imported by featurectl: remove the sys.exit() call")
    return Problem(f"the file raised {type(exc).__name__}{detail}", file=rel, line=line,
                   hint="fix the error in the Python definition file")


def _line_in(exc: BaseException, filename: str) -> int | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    return frames[-1].lineno if frames else None


def _kind_of_title(title: str) -> str | None:
    # A Feature fails inside its view's constructor call, before the view exists: name the feature.
    if title == Feature.__name__:
        return "feature"
    return next((k for k in KINDS for cls in MODELS[k] if cls.__name__ == title), None)


def _failing_arguments(exc: ValidationError) -> dict[str, Any]:
    """The keyword arguments of the constructor that failed, read from pydantic's __init__ frame:
    its `name=` names the object, and its features' names label 'features.N' paths as in YAML."""
    tb = exc.__traceback__
    found: dict[str, Any] = {}
    while tb is not None:
        data = tb.tb_frame.f_locals.get("data")
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            found = data
        tb = tb.tb_next
    return found
