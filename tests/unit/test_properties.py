"""Properties of the core over generated definitions (hypothesis).

Definitions are generated as the raw dicts a user writes (durations as "36h", dtypes as
"LIST<int64>"), so the same spec can be written as YAML, as Python, or validated directly.
"""
from __future__ import annotations

import tempfile
import textwrap
from datetime import timezone
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from featurectl.core.bumps import largest
from featurectl.core.definitions import Definitions
from featurectl.core.diff import diff
from featurectl.core.dtypes import ENTITY_KEY_TYPES, NUMERIC, SCALARS, element_type
from featurectl.core.model import PLURAL, FeatureView, fits_dtype
from featurectl.loading.files import load_definitions
from tests.unit.factories import entity, source

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DTYPES = SCALARS + tuple(f"list<{t}>" for t in SCALARS)
UNITS = "smhdw"
TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ABC0123456789.,:-'\"!#", max_size=12)


def names(prefix: str, min_size: int, max_size: int):
    suffix = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
    return st.lists(suffix, min_size=min_size, max_size=max_size, unique=True).map(
        lambda xs: [f"{prefix}{x}" for x in xs])


nonzero_durations = st.builds(lambda n, u: f"{n}{u}", st.integers(1, 500), st.sampled_from(UNITS))
durations = st.one_of(st.just("0"), st.just(0), nonzero_durations)


def spelled(dtype: str):
    """A dtype as a user might write it: canonical, upper-case, or with spaces in list<>."""
    variants = [dtype, dtype.upper()]
    if element_type(dtype):
        variants.append(f"list< {element_type(dtype)} >")
    return st.sampled_from(variants)


def value_for(dtype: str):
    """A scalar of the dtype's (element) type."""
    base = element_type(dtype) or dtype
    if base in ("int32", "int64"):
        return st.integers(-1000, 1000)
    if base in ("float32", "float64"):
        return st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    if base == "bool":
        return st.booleans()
    if base == "timestamp":  # YAML reads these as datetime/date objects; users may also quote them
        return st.one_of(st.dates(), st.datetimes(timezones=st.just(timezone.utc)),
                         st.datetimes().map(lambda d: d.isoformat()))
    return TEXT


@st.composite
def constraints(draw, dtype: str):
    base = element_type(dtype) or dtype
    out: dict[str, Any] = {}
    if base in NUMERIC and draw(st.booleans()):
        bounds = sorted(draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=2)))
        keep = draw(st.sampled_from(["min", "max", "both"]))
        if keep in ("min", "both"):
            out["min"] = bounds[0]
        if keep in ("max", "both"):
            out["max"] = bounds[1]
    if draw(st.booleans()):
        out["allowed"] = draw(st.lists(value_for(dtype), min_size=1, max_size=3, unique=True))
    return out


@st.composite
def feature_spec(draw, name: str) -> dict[str, Any]:
    dtype = draw(st.sampled_from(DTYPES))
    spec: dict[str, Any] = {"name": name, "dtype": draw(spelled(dtype))}
    if draw(st.booleans()):
        spec["nullable"] = draw(st.booleans())
    if draw(st.booleans()):
        scalar = value_for(dtype)
        spec["default"] = draw(st.lists(scalar, max_size=3) if element_type(dtype) else scalar)
    if draw(st.booleans()):
        spec["description"] = draw(TEXT)
    if draw(st.booleans()):
        spec["constraints"] = draw(constraints(dtype))
    return spec


def optional(draw, spec: dict[str, Any], key: str, strategy) -> None:
    if draw(st.booleans()):
        spec[key] = draw(strategy)


@st.composite
def view_spec(draw, name: str, entities: list[str], sources: list[str]) -> dict[str, Any]:
    features = draw(names("f_", 1, 4))
    spec: dict[str, Any] = {
        "name": name,
        "version": draw(st.builds("{}.{}.{}".format, st.integers(0, 3), st.integers(0, 12), st.integers(0, 12))),
        "entities": draw(st.lists(st.sampled_from(entities), min_size=1, max_size=len(entities), unique=True)),
        "source": draw(st.sampled_from(sources)),
        "owner": draw(st.sampled_from(["me@example.com", "rides-ml", "x"])),
        "features": [draw(feature_spec(f)) for f in features],
    }
    optional(draw, spec, "ttl", durations)
    optional(draw, spec, "online", st.booleans())
    optional(draw, spec, "description", TEXT)
    optional(draw, spec, "tags", st.dictionaries(st.sampled_from(["team", "tier", "pii"]), TEXT, max_size=3))
    optional(draw, spec, "freshness_sla", nonzero_durations)
    optional(draw, spec, "deprecated", st.booleans())
    return spec


@st.composite
def definition_specs(draw) -> dict[str, list[dict[str, Any]]]:
    entity_names = draw(names("e_", 1, 3))
    source_names = draw(names("s_", 1, 2))
    entities = []
    for n in entity_names:
        spec = {"name": n, "join_key": f"{n}_id"}
        optional(draw, spec, "dtype", st.sampled_from(ENTITY_KEY_TYPES))
        optional(draw, spec, "description", TEXT)
        entities.append(spec)
    sources = []
    for n in source_names:
        spec = {"name": n, "timestamp_field": "event_timestamp"}
        if draw(st.booleans()):
            spec["path"] = draw(st.sampled_from(["data/a.parquet", "data/*.csv", "x/y.pq"]))
        else:
            spec["query"] = draw(st.sampled_from(["SELECT 1", "SELECT * FROM read_parquet('d/*.parquet')"]))
        optional(draw, spec, "created_timestamp_field", st.just("created"))
        optional(draw, spec, "description", TEXT)
        sources.append(spec)
    views = [draw(view_spec(n, entity_names, source_names)) for n in draw(names("v_", 0, 3))]
    services = []
    for n in draw(names("svc_", 0, 2 if views else 0)):
        refs = draw(st.lists(
            st.sampled_from(views).flatmap(lambda v: st.sampled_from(
                [f"{v['name']}:*"] + [f"{v['name']}:{f['name']}" for f in v["features"]])),
            min_size=1, max_size=3, unique=True))
        spec = {"name": n, "version": "1.0.0", "owner": "me", "features": refs}
        optional(draw, spec, "tags", st.dictionaries(st.just("team"), TEXT, max_size=1))
        services.append(spec)
    return {"entities": entities, "sources": sources, "feature_views": views, "feature_services": services}


definitions = definition_specs().map(Definitions.from_dict)


# --- (1) a definition diffed against itself, or its canonical copy, has no changes --------

@FAST
@given(definitions)
def test_diff_against_itself_is_empty(defs: Definitions):
    total = sum(len(defs.of_kind(k)) for k in PLURAL)
    assert diff(defs, defs) == ([], total)
    assert diff(defs, Definitions.from_dict(defs.to_dict())) == ([], total)


# --- (4) canonical form round-trips -------------------------------------------------

@FAST
@given(definitions)
def test_canonical_form_round_trips(defs: Definitions):
    data = defs.to_dict()
    again = Definitions.from_dict(data)
    assert again == defs
    assert again.to_dict() == data
    assert Definitions.from_dict(yaml.safe_load(yaml.safe_dump(data))) == defs


# --- (3) YAML and Python forms compile to the same canonical form ------------------

def py_literal(key: str, value: Any) -> str:
    """A keyword value in Python; hour durations as timedelta, as a Python author might."""
    if key in ("ttl", "freshness_sla") and isinstance(value, str) and value.endswith("h"):
        return f"timedelta(hours={int(value[:-1])})"
    return repr(value)


def py_call(cls: str, spec: dict[str, Any], refs: dict[str, str] | None = None) -> str:
    refs = refs or {}
    args = []
    for key, value in spec.items():
        if key == "entities":
            args.append(f"entities=[{', '.join(refs[e] for e in value)}]")
        elif key == "source":
            args.append(f"source={refs[value]}")
        elif key == "features" and cls == "FeatureView":
            args.append("features=[" + ", ".join(py_call("Feature", f) for f in value) + "]")
        else:
            args.append(f"{key}={py_literal(key, value)}")
    return f"{cls}({', '.join(args)})"


def python_form(spec: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["import datetime", "from datetime import timedelta", "",
             "from featurectl import Entity, Feature, FeatureService, FeatureView, FileSource, QuerySource", ""]
    refs = {}
    for e in spec["entities"]:
        refs[e["name"]] = f"entity_{e['name']}"
        lines.append(f"{refs[e['name']]} = {py_call('Entity', e)}")
    for s in spec["sources"]:
        refs[s["name"]] = f"source_{s['name']}"
        lines.append(f"{refs[s['name']]} = {py_call('FileSource' if 'path' in s else 'QuerySource', s)}")
    for v in spec["feature_views"]:
        lines.append(f"view_{v['name']} = {py_call('FeatureView', v, refs)}")
    for s in spec["feature_services"]:
        lines.append(f"service_{s['name']} = {py_call('FeatureService', s)}")
    return "\n".join(lines) + "\n"


def load_files(files: dict[str, str]) -> Definitions:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, text in files.items():
            (root / "features" / name).parent.mkdir(parents=True, exist_ok=True)
            (root / "features" / name).write_text(text)
        defs, _ = load_definitions(root, ["features/**/*.yaml", "features/**/*.py"])
    return defs


@SLOW
@given(definition_specs())
def test_yaml_and_python_forms_compile_to_the_same_canonical_form(spec):
    yaml_files = {f"{kind}.yaml": yaml.safe_dump({kind: items}, sort_keys=False)
                  for kind, items in spec.items() if items}
    from_yaml = load_files(yaml_files)
    from_python = load_files({"defs.py": python_form(spec)})
    assert from_yaml.to_dict() == from_python.to_dict()
    assert from_yaml.to_dict() == Definitions.from_dict(spec).to_dict()


def test_python_form_renderer_writes_object_references():
    spec = {"entities": [{"name": "e_d", "join_key": "e_d_id"}],
            "sources": [{"name": "s_h", "path": "d.parquet", "timestamp_field": "ts"}],
            "feature_views": [{"name": "v_s", "version": "1.0.0", "entities": ["e_d"], "source": "s_h",
                               "owner": "me", "ttl": "36h", "features": [{"name": "f_x", "dtype": "int64"}]}],
            "feature_services": []}
    assert python_form(spec).splitlines()[-1] == textwrap.dedent("""\
        view_v_s = FeatureView(name='v_s', version='1.0.0', entities=[entity_e_d], source=source_s_h, \
owner='me', ttl=timedelta(hours=36), features=[Feature(name='f_x', dtype='int64')])""")


# --- (2) the required bump of combined changes is the largest of each alone --------

WORLD = [entity("e_a"), entity("e_b"), source("s_a"), source("s_b")]


@st.composite
def base_view(draw) -> dict[str, Any]:
    spec = draw(view_spec("v", ["e_a"], ["s_a"]))
    spec["entities"], spec["source"] = ["e_a"], "s_a"
    return FeatureView.model_validate(spec).model_dump(mode="json")


DEFAULT_CHOICES = {
    "int32": [12345, 54321], "int64": [12345, 54321], "float32": [0.5, 1.5], "float64": [0.5, 1.5],
    "bool": [True, False], "string": ["x", "y"], "bytes": ["x", "y"],
    "timestamp": ["2024-01-01T00:00:00", "2024-02-02T00:00:00"],
}


def values_fit(f: dict[str, Any], dtype: str) -> bool:
    """Whether the feature's default and allowed values are values of `dtype`."""
    base = element_type(dtype) or dtype
    default = f.get("default")
    if default is not None and isinstance(default, list) != bool(element_type(dtype)):
        return False
    values = [] if default is None else default if isinstance(default, list) else [default]
    allowed = (f.get("constraints") or {}).get("allowed") or []
    return all(v is None or fits_dtype(v, base) for v in values) and all(fits_dtype(v, base) for v in allowed)


def other(value: Any, choices: list[Any]) -> Any:
    return next(c for c in choices if c != value)


def feature_mutations(view: dict[str, Any]) -> list[str]:
    kinds = ["dtype", "nullable", "default", "constraints", "description"]
    return kinds + ["remove"] if len(view["features"]) > 1 else kinds  # a view keeps a feature


def constraint_key(c: dict[str, Any] | None):
    """Constraints as the rules compare them: allowed values as a set, empty as none."""
    c = {k: v for k, v in (c or {}).items() if v is not None}
    if not c:
        return None
    return c.get("min"), c.get("max"), frozenset(c["allowed"]) if "allowed" in c else None


def mutate_feature(draw, f: dict[str, Any], how: str) -> dict[str, Any] | None:
    f = dict(f)
    has_bounds = bool(f.get("constraints")) and (
        f["constraints"].get("min") is not None or f["constraints"].get("max") is not None)
    if how == "remove":
        return None
    if how == "dtype":
        pool = [d for d in DTYPES if d != f["dtype"] and (not has_bounds or (element_type(d) or d) in NUMERIC)]
        fitting = [d for d in pool if values_fit(f, d)]
        if not fitting:  # no other dtype holds this default / these allowed values: drop them
            f["default"] = None
            f["constraints"] = {**f["constraints"], "allowed": None} if f.get("constraints") else None
        f["dtype"] = draw(st.sampled_from(fitting or pool))
    elif how == "nullable":
        f["nullable"] = not f["nullable"]
    elif how == "default":
        base = element_type(f["dtype"])
        choices = DEFAULT_CHOICES[base or f["dtype"]]
        f["default"] = other(f["default"], [[c] for c in choices] if base else choices)
    elif how == "constraints":
        new = draw(constraints(f["dtype"])) or None
        if constraint_key(new) == constraint_key(f["constraints"]):
            new = None if constraint_key(f["constraints"]) else {"allowed": [draw(value_for(f["dtype"]))]}
        f["constraints"] = new
    elif how == "description":
        f["description"] = f["description"] + "!"
    return f


VIEW_MUTATIONS = {
    "ttl": lambda v: {"ttl": other(v["ttl"], ["1w", "1h", "0"])},  # canonical spellings
    "online": lambda v: {"online": not v["online"]},
    "entities": lambda v: {"entities": ["e_a", "e_b"]},
    "source": lambda v: {"source": "s_b"},
    "description": lambda v: {"description": v["description"] + "!"},
    "owner": lambda v: {"owner": v["owner"] + ".new"},
    "tags": lambda v: {"tags": {**v["tags"], "changed": "yes"}},
    "freshness_sla": lambda v: {"freshness_sla": other(v["freshness_sla"], ["2h", "1d"])},
    "deprecated": lambda v: {"deprecated": not v["deprecated"]},
}


@st.composite
def independent_changes(draw):
    """A base view and 2-5 changes, each touching a different field or feature."""
    base = draw(base_view())
    targets = list(VIEW_MUTATIONS) + [("feature", f["name"]) for f in base["features"]] + ["add_a", "add_b"]
    chosen = draw(st.lists(st.sampled_from(targets), min_size=2, max_size=5, unique=True))
    changes = []
    for target in chosen:
        if isinstance(target, tuple):
            old = next(f for f in base["features"] if f["name"] == target[1])
            how = draw(st.sampled_from(feature_mutations(base)))
            changes.append(("feature", target[1], mutate_feature(draw, old, how)))
        elif target.startswith("add_"):
            changes.append(("feature", f"f_new_{target[-1]}", draw(feature_spec(f"f_new_{target[-1]}"))))
        else:
            changes.append(("view", target, VIEW_MUTATIONS[target](base)))
    # A view must keep a feature: removing every one of them is not a view the model accepts.
    removed = sum(1 for where, _, change in changes if where == "feature" and change is None)
    assume(removed < len(base["features"]))
    return base, changes


def apply(base: dict[str, Any], changes) -> FeatureView:
    spec = {**base, "features": [dict(f) for f in base["features"]]}
    for where, target, change in changes:
        if where == "view":
            spec.update(change)
            continue
        features = [f for f in spec["features"] if f["name"] != target]
        if change is not None:
            old_index = next((i for i, f in enumerate(spec["features"]) if f["name"] == target), len(features))
            features.insert(old_index, change)
        spec["features"] = features
    return FeatureView.model_validate(spec)


def required_bump(current: FeatureView, desired: FeatureView) -> str:
    diffs, _ = diff(_world(current), _world(desired))
    return largest(d.required_bump for d in diffs)


def _world(view: FeatureView) -> Definitions:
    return Definitions(entities={e.name: e for e in WORLD if e.kind == "entity"},
                       sources={s.name: s for s in WORLD if s.kind == "source"},
                       feature_views={view.name: view})


@FAST
@given(independent_changes())
def test_combined_bump_is_the_largest_single_bump(case):
    base, changes = case
    current = FeatureView.model_validate(base)
    alone = [required_bump(current, apply(base, [c])) for c in changes]
    combined = required_bump(current, apply(base, changes))
    assert combined == largest(alone)
    assert all(b != "none" for b in alone), "each generated change must be a classified change"
