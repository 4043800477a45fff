"""The definitions model: durations, dtypes, versions, names, constraints, references."""
from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from featurectl.core.bumps import declared_bump, minimum_version
from featurectl.core.definitions import Definitions, canonical, check_references
from featurectl.core.dtypes import is_widening, parse_dtype
from featurectl.core.durations import format_duration, parse_duration
from featurectl.core.model import Constraints, Entity, Feature, FeatureService, FeatureView, FileSource, FeatureRef, parse_feature_ref, parse_ref
from tests.unit.factories import entity, feature, query_source, service, source, view, world


def error_fields(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in exc.errors()]


# --- durations ----------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("15m", 900), ("36h", 129600), ("7d", 604800), ("2w", 1209600),
    ("0", 0), (0, 0), ("0s", 0), (" 1d ", 86400), (timedelta(hours=2), 7200),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "1", "1.5h", "-1d", "1y", "d", "1 day", "1d2h", True, None, 1.0,
                                 timedelta(seconds=-1), timedelta(milliseconds=1500)])
def test_bad_durations(bad):
    with pytest.raises(ValueError) as err:
        parse_duration(bad)
    assert "30s" in str(err.value) or "seconds" in str(err.value)


def test_bare_number_says_add_a_unit():
    with pytest.raises(ValueError, match="add a unit, e.g. 5s or 5d"):
        parse_duration(5)


@pytest.mark.parametrize("seconds, text", [(0, "0"), (30, "30s"), (90, "90s"), (3600, "1h"),
                                           (129600, "36h"), (604800, "1w"), (86400 * 8, "8d")])
def test_format_duration_is_shortest_and_round_trips(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_view_ttl_in_canonical_form():
    assert canonical(view(ttl="7d"))["ttl"] == "1w"
    assert "ttl" not in canonical(view(ttl=0))
    assert view(ttl=timedelta(days=1)) == view(ttl="24h")


# --- dtypes -------------------------------------------------------------------------

@pytest.mark.parametrize("text, dtype", [
    ("int64", "int64"), ("Float32", "float32"), (" bool ", "bool"), ("timestamp", "timestamp"),
    ("list<int32>", "list<int32>"), ("LIST< string >", "list<string>"), ("list<bytes>", "list<bytes>"),
])
def test_dtypes(text, dtype):
    assert parse_dtype(text) == dtype


@pytest.mark.parametrize("bad", ["int", "float", "list<>", "list<list<int64>>", "list<int>", "array<int64>",
                                 "map<string,int64>", "", "int64[]"])
def test_unknown_dtypes(bad):
    with pytest.raises(ValueError, match="unknown dtype"):
        parse_dtype(bad)


def test_dtype_must_be_a_string():
    with pytest.raises(ValueError, match="a dtype is a string"):
        parse_dtype(64)


def test_feature_with_unknown_dtype_names_the_field():
    with pytest.raises(ValidationError) as err:
        feature("x", "double")
    assert error_fields(err.value) == ["dtype"]
    assert "use one of bool, int32" in str(err.value)


@pytest.mark.parametrize("old, new, widening", [
    ("int32", "int64", True), ("int64", "float64", True), ("float32", "float64", True), ("int32", "float64", True),
    ("int32", "float32", False), ("int64", "int32", False), ("float64", "float32", False),
    ("list<int32>", "list<int64>", True), ("list<int64>", "list<int32>", False),
    ("int32", "list<int64>", False), ("list<int32>", "int64", False), ("int64", "int64", False),
])
def test_widening_table(old, new, widening):
    assert is_widening(old, new) is widening


# --- versions -----------------------------------------------------------------------

@pytest.mark.parametrize("good", ["0.0.1", "1.0.0", "10.20.30", "1.0.0-rc.1", "1.0.0+build.5"])
def test_valid_versions(good):
    assert view(version=good).version == good


@pytest.mark.parametrize("bad", ["1", "1.0", "v1.0.0", "1.0.0.0", "01.0.0", "", "latest", 1.0])
def test_invalid_versions(bad):
    with pytest.raises(ValidationError) as err:
        view(version=bad)
    assert error_fields(err.value) == ["version"]
    assert "MAJOR.MINOR.PATCH" in str(err.value)


def test_view_major():
    assert view(version="3.2.1").major == 3
    assert view(version="12.0.0-rc.1+b7").major == 12


# Edge cases of SemVer 2.0.0: leading zeros, empty or odd identifiers, non-ASCII digits.
SEMVER_CORPUS = [
    "0.0.0", "1.2.3", "10.20.30", "1.1.2-prerelease+meta", "1.1.2+meta", "1.1.2+meta-valid", "1.0.0-alpha",
    "1.0.0-beta", "1.0.0-alpha.beta", "1.0.0-alpha.beta.1", "1.0.0-alpha.1", "1.0.0-alpha0.valid",
    "1.0.0-alpha.0valid", "1.0.0-alpha-a.b-c-somethinglong+build.1-aef.1-its-okay", "1.0.0-rc.1+build.1",
    "2.0.0-rc.1+build.123", "1.2.3-beta", "10.2.3-DEV-SNAPSHOT", "1.2.3-SNAPSHOT-123", "2.0.0+build.1848",
    "2.0.1-alpha.1227", "1.0.0-alpha+beta", "1.2.3----RC-SNAPSHOT.12.9.1--.12+788", "1.2.3----R-S.12.9.1--.12+meta",
    "1.2.3----RC-SNAPSHOT.12.9.1--.12", "1.0.0+0.build.1-rc.10000aaa-kk-0.1", "1.0.0-0A.is.legal",
    "99999999999999999999999.999999999999999999.99999999999999999", "1.0.0-00", "1.0.0-01", "1.0.0+01",
    "1", "1.2", "1.2.3-0123", "1.2.3-0123.0123", "1.1.2+.123", "+invalid", "-invalid", "-invalid+invalid",
    "-invalid.01", "alpha", "alpha.beta", "alpha.beta.1", "alpha.1", "alpha+beta", "alpha_beta", "alpha.",
    "alpha..", "beta", "1.0.0-alpha_beta", "-alpha.", "1.0.0-alpha..", "1.0.0-alpha..1", "1.0.0-alpha...1",
    "1.0.0-alpha....1", "1.0.0-alpha.....1", "1.0.0-alpha......1", "1.0.0-alpha.......1", "01.1.1", "1.01.1",
    "1.1.01", "1.2.3.DEV", "1.2-SNAPSHOT", "1.2.31.2.3----RC-SNAPSHOT.12.09.1--..12+788", "1.2-RC-SNAPSHOT",
    "-1.0.3-gamma+b7718", "+justmeta", "9.8.7+meta+meta", "9.8.7-whatever+meta+meta", "1.0.0-", "1.0.0+",
    "1.0.0-a.", "1.0.0+a.", "1.0.0-\u00e9", "\u0661.0.0", "1.0.\u0663", "1.0.0-\u0661", "1.0.0 ", " 1.0.0", "1.0.0\n",
    "v1.0.0", "1.0.0.0", "", "1.0.0-a b",
]


@pytest.mark.parametrize("text", SEMVER_CORPUS)
def test_versions_are_checked_as_the_semver_package_parses_them(text):
    """The model checks versions with its own SemVer 2.0.0 pattern (the semver package is
    imported only where versions are compared); both must accept exactly the same."""
    import semver

    from featurectl.core.model import SEMVER
    assert (SEMVER.match(text) is not None) == semver.Version.is_valid(text)


@pytest.mark.parametrize("applied, declared, bump", [
    ("1.4.2", "1.4.2", "none"), ("1.4.2", "1.4.1", "none"), ("1.4.2", "1.4.3", "patch"),
    ("1.4.2", "1.5.0", "minor"), ("1.4.2", "2.0.0", "major"), ("0.3.1", "0.4.0", "minor"),
])
def test_declared_bump(applied, declared, bump):
    assert declared_bump(applied, declared) == bump


@pytest.mark.parametrize("applied, required, floor", [
    ("1.4.2", "none", "1.4.2"), ("1.4.2", "patch", "1.4.3"), ("1.4.2", "minor", "1.5.0"),
    ("1.4.2", "major", "2.0.0"), ("0.3.1", "major", "0.4.0"), ("0.3.1", "minor", "0.3.2"),
    ("0.3.1", "patch", "0.3.2"),
])
def test_minimum_version(applied, required, floor):
    assert minimum_version(applied, required) == floor


# --- names --------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["", "1abc", "has space", "dash-name", "dot.name", "colon:name", "é"])
def test_bad_names(bad):
    with pytest.raises(ValidationError) as err:
        entity(bad)
    assert "name" in error_fields(err.value)


@pytest.mark.parametrize("good", ["driver", "_private", "Driver2", "a_b_c"])
def test_good_names(good):
    assert entity(good).name == good


def test_bad_feature_name_names_the_feature_field():
    with pytest.raises(ValidationError) as err:
        view(features=[feature("ok"), feature("ok")])
    assert "declared twice" in str(err.value)
    with pytest.raises(ValidationError) as err:
        feature("bad name")
    assert error_fields(err.value) == ["name"]


# --- constraints --------------------------------------------------------------------

def test_min_greater_than_max():
    with pytest.raises(ValidationError, match=r"min \(2\) is greater than max \(1\)"):
        Constraints(min=2, max=1)
    assert Constraints(min=1, max=1).min == 1


def test_min_max_need_a_numeric_dtype():
    with pytest.raises(ValidationError, match="need a numeric dtype, not string"):
        feature("x", "string", constraints={"min": 0})
    assert feature("x", "list<float32>", constraints={"max": 1}).constraints.max == 1
    assert feature("x", "string", constraints={"allowed": ["a", "b"]}).constraints.allowed == ["a", "b"]


def test_constraints_are_closed():
    with pytest.raises(ValidationError) as err:
        Constraints(minimum=1)
    assert error_fields(err.value) == ["minimum"]


def test_allowed_keeps_value_types():
    assert Constraints(allowed=[1, "1", True, 1.5]).allowed == [1, "1", True, 1.5]
    assert [type(v) for v in Constraints(allowed=[1, "1", True, 1.5]).allowed] == [int, str, bool, float]


# --- entities -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["int32", "int64", "string", "bytes"])
def test_entity_key_dtypes(dtype):
    assert entity(dtype=dtype).dtype == dtype


@pytest.mark.parametrize("dtype", ["float32", "float64", "bool", "timestamp", "list<int64>"])
def test_entity_key_dtype_not_allowed(dtype):
    with pytest.raises(ValidationError) as err:
        entity(dtype=dtype)
    assert error_fields(err.value) == ["dtype"]
    assert "an entity key must be one of" in str(err.value)


def test_entity_default_dtype_is_int64():
    assert Entity(name="d", join_key="d_id").dtype == "int64"


# --- sources ------------------------------------------------------------------------

def test_file_source_path_must_be_parquet_or_csv():
    assert source(path="data/*.csv").path == "data/*.csv"
    with pytest.raises(ValidationError, match="must end in .parquet or .csv"):
        source(path="data/x.json")


def test_query_and_file_sources_are_told_apart_in_dicts():
    defs = Definitions.from_dict({"sources": [canonical(query_source("q")), canonical(source("f"))]})
    assert type(defs.sources["q"]).__name__ == "QuerySource"
    assert type(defs.sources["f"]).__name__ == "FileSource"


# --- views and references -----------------------------------------------------------

def test_view_requires_owner_features_and_entities():
    with pytest.raises(ValidationError) as err:
        FeatureView(name="v", version="1.0.0", entities=[], source="s", owner="", features=[])
    assert sorted(error_fields(err.value)) == ["entities", "features", "owner"]


def test_view_duplicate_entity():
    with pytest.raises(ValidationError, match="an entity is listed twice"):
        view(entities=["driver", "driver"])


def test_python_objects_may_be_referenced_directly():
    d, s = entity(), source()
    assert view(entities=[d], source=s) == view()


def test_models_are_frozen_and_closed():
    v = view()
    with pytest.raises(ValidationError):
        v.ttl = 5  # type: ignore[misc]
    with pytest.raises(ValidationError) as err:
        view(colour="red")
    assert error_fields(err.value) == ["colour"]


@pytest.mark.parametrize("ref, parsed", [("v:f", ("v", "f")), ("v:*", ("v", "*")), ("v_1:_f2", ("v_1", "_f2"))])
def test_parse_ref(ref, parsed):
    assert parse_ref(ref) == parsed


@pytest.mark.parametrize("bad", ["v", "v:", ":f", "v:f:g", "v:**", "v f:x", "v:f*", ""])
def test_malformed_service_refs(bad):
    with pytest.raises(ValidationError, match="write 'view:feature', 'view:\\*' or"):
        service(features=[bad])


def test_service_duplicate_ref():
    with pytest.raises(ValidationError, match="listed twice"):
        service(features=["driver_stats:conv_rate", "driver_stats:conv_rate"])


def test_service_needs_a_feature():
    with pytest.raises(ValidationError) as err:
        FeatureService(name="s", version="1.0.0", owner="o", features=[])
    assert error_fields(err.value) == ["features"]


def test_check_references_finds_every_dangling_name():
    bad = world(view("v2", entities=["nobody"], source="nowhere"),
                service("s2", features=["ghost:x", "driver_stats:missing", "driver_stats:*"]))
    problems = check_references(bad, {("feature_view", "v2"): "features/v2.yaml"})
    got = [(p.kind, p.name, p.field, p.file) for p in problems]
    assert got == [
        ("feature_view", "v2", "entities", "features/v2.yaml"),
        ("feature_view", "v2", "source", "features/v2.yaml"),
        ("feature_service", "s2", "features", None),
        ("feature_service", "s2", "features", None),
    ]
    assert all(p.rule == "DANGLING_REFERENCE" and "does not exist" in p.message for p in problems)
    assert not any(p.message.startswith("DANGLING_REFERENCE") for p in problems), "the id is a field, not a prefix"
    assert problems[0].text() == "DANGLING_REFERENCE: " + problems[0].message
    assert "known: driver" in problems[0].hint
    assert "'driver_stats' has: conv_rate, acc_rate, trips" in problems[3].hint
    assert check_references(world()) == []


def test_feature_named_like_a_join_key_is_a_problem():
    (p,) = check_references(world(view(features=[feature("driver_id", "int64")]),
                                     service(features=["driver_stats:*"])))
    assert (p.name, p.field) == ("driver_stats", "features.driver_id")


@pytest.mark.parametrize("ref, parsed", [
    ("driver_stats:conv_rate", FeatureRef("driver_stats", None, "conv_rate")),
    ("driver_stats:*", FeatureRef("driver_stats", None, "*")),
    ("driver_stats@2:conv_rate", FeatureRef("driver_stats", 2, "conv_rate")),
    ("driver_stats@0:*", FeatureRef("driver_stats", 0, "*")),
])
def test_feature_refs_may_pin_a_major(ref, parsed):
    assert parse_feature_ref(ref) == parsed
    assert parse_ref(ref) == (parsed.view, parsed.feature)


@pytest.mark.parametrize("ref", ["driver_stats@:x", "driver_stats@01:x", "driver_stats@-1:x", "driver_stats@v2:x",
                                 "@2:x", "driver_stats@2", "driver_stats@2:"])
def test_malformed_pinned_refs(ref):
    with pytest.raises(ValueError, match="view@2:feature"):
        parse_feature_ref(ref)


def test_a_service_may_pin_an_older_major_but_not_a_future_one():
    defs = world(service(features=["driver_stats@0:anything", "driver_stats@5:conv_rate"]))
    problems = check_references(defs)
    assert [(p.rule, p.message) for p in problems] == [
        ("DANGLING_REFERENCE", "'driver_stats@5:conv_rate' pins major 5, but view 'driver_stats' is at 1.0.0")]


# --- canonical form ------------------------------------------------

def test_canonical_form_omits_defaults_and_sorts():
    d = world(view("a_view", tags={"z": "1", "a": "2"}), entity("alpha"))
    data = d.to_dict()
    assert list(data) == ["entities", "sources", "feature_views", "feature_services"]
    assert [e["name"] for e in data["entities"]] == ["alpha", "driver"]
    assert list(data["feature_views"][0]["tags"]) == ["a", "z"]
    assert data["entities"][0] == {"name": "alpha", "join_key": "alpha_id"}
    assert Definitions.from_dict(data) == d


def test_file_source_model():
    s = FileSource(name="s", path="a.pq", timestamp_field="ts", created_timestamp_field="created")
    assert canonical(s) == {"name": "s", "path": "a.pq", "timestamp_field": "ts",
                            "created_timestamp_field": "created"}


# --- values YAML types on its own (dates, timestamps) -------------------------------

def test_timestamp_default_is_held_in_canonical_form():
    """YAML reads `2024-01-01T00:00:00Z` as a datetime, the registry gives back a string:
    the model keeps the canonical string, so an applied definition is not changed forever."""
    from datetime import date, datetime, timezone

    from featurectl.core.diff import diff

    f = feature("since", "timestamp", default=datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert f.default == "2024-01-01T00:00:00Z"
    assert feature("day", "timestamp", default=date(2024, 1, 2)).default == "2024-01-02"
    assert feature("xs", "list<int64>", default=(1, 2)).default == [1, 2]
    d = world(view(features=[*view().features, f]))
    assert diff(Definitions.from_dict(d.to_dict()), d)[0] == []


def test_allowed_dates_are_held_as_strings():
    from datetime import date

    c = Constraints(allowed=[date(2024, 1, 1), "2024-01-02"])
    assert c.allowed == ["2024-01-01", "2024-01-02"]


@pytest.mark.parametrize("dtype, default", [
    ("int64", "x"), ("int32", 2**31), ("int64", True), ("string", 1), ("bool", 1),
    ("timestamp", "yesterday"), ("list<int64>", 1), ("list<int64>", ["a"]), ("float32", "0.5"),
])
def test_a_default_that_is_not_a_value_of_the_dtype_is_refused(dtype, default):
    with pytest.raises(ValidationError, match="default .* is not a valid"):
        Feature(name="f", dtype=dtype, default=default)


@pytest.mark.parametrize("dtype, default", [
    ("int64", 3), ("float32", 1), ("float64", 0.5), ("bool", False), ("string", "x"), ("bytes", "x"),
    ("timestamp", "2024-01-01T00:00:00Z"), ("list<float32>", [1, 2.5, None]),
])
def test_a_default_of_the_dtype_is_accepted(dtype, default):
    assert Feature(name="f", dtype=dtype, default=default).default == default


def test_allowed_values_must_be_values_of_the_dtype():
    with pytest.raises(ValidationError, match="allowed value"):
        Feature(name="f", dtype="int64", constraints={"allowed": [1, "two"]})
    assert Feature(name="f", dtype="list<string>", constraints={"allowed": ["a", "b"]}).constraints.allowed == ["a", "b"]
