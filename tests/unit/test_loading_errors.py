"""Every bad definition file becomes a DefinitionError whose problems say where: file, object, field."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from featurectl.core.errors import DefinitionError, Problem
from featurectl.loading.files import load_definitions

PATTERNS = ["features/**/*.yaml", "features/**/*.yml", "features/**/*.py"]

ENTITY = """
entities:
  - name: driver
    join_key: driver_id
"""
SOURCE = """
sources:
  - name: driver_hourly
    path: data/driver.parquet
    timestamp_field: event_timestamp
"""


def yaml_view(**fields: str) -> str:
    """A YAML view definition; keyword arguments replace (or, with None-like '-', drop) lines."""
    lines = {"name": "driver_stats", "version": "1.0.0", "entities": "[driver]", "source": "driver_hourly",
             "owner": "me@example.com", "ttl": "1d",
             "features": "[{name: conv_rate, dtype: float32}, {name: trips, dtype: int64}]"}
    lines.update(fields)
    body = "\n".join(f"    {k}: {v}" for k, v in lines.items() if v != "-")
    return "feature_views:\n  - " + body.lstrip() + "\n"


PY_HEADER = """\
from featurectl import Entity, Feature, FeatureView, FileSource
driver = Entity(name="driver", join_key="driver_id")
hourly = FileSource(name="driver_hourly", path="data/driver.parquet", timestamp_field="event_timestamp")
"""


def load(tmp_path: Path, files: dict[str, str]):
    for name, text in files.items():
        path = tmp_path / "features" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return load_definitions(tmp_path, PATTERNS)


def problems(tmp_path: Path, files: dict[str, str]) -> list[Problem]:
    with pytest.raises(DefinitionError) as err:
        load(tmp_path, files)
    assert err.value.problems, "a DefinitionError must carry its problems"
    for p in err.value.problems:
        assert p.file and p.file in p.where(), f"problem without a file: {p}"
    return err.value.problems


def one(tmp_path: Path, files: dict[str, str]) -> Problem:
    found = problems(tmp_path, files)
    assert len(found) == 1, found
    return found[0]


def test_valid_repository_loads_with_origins(tmp_path):
    defs, origins = load(tmp_path, {"base.yaml": ENTITY + SOURCE, "views/v.yml": yaml_view()})
    assert set(defs.feature_views) == {"driver_stats"}
    assert origins[("feature_view", "driver_stats")] == "features/views/v.yml"
    assert origins[("entity", "driver")] == "features/base.yaml"


def test_malformed_yaml_names_file_and_line(tmp_path):
    p = one(tmp_path, {"bad.yaml": "entities:\n  - name: driver\n    join_key: [driver_id\n  - name: x\n"})
    assert p.file == "features/bad.yaml"
    assert p.line is not None and p.line >= 3
    assert p.message.startswith("malformed YAML")
    assert f"features/bad.yaml:{p.line}" in p.where()


def test_yaml_tab_indentation_error(tmp_path):
    p = one(tmp_path, {"bad.yaml": "entities:\n\t- name: driver\n"})
    assert (p.file, p.line) == ("features/bad.yaml", 2)


def test_unknown_top_level_key(tmp_path):
    p = one(tmp_path, {"a.yaml": ENTITY + "views:\n  - name: x\n"})
    assert (p.file, p.field) == ("features/a.yaml", "views")
    assert "unknown top-level key 'views'" in p.message
    assert "feature_views" in p.hint


def test_top_level_not_a_mapping(tmp_path):
    p = one(tmp_path, {"a.yaml": "- name: driver\n"})
    assert p.file == "features/a.yaml" and "mapping" in p.message


def test_kind_value_not_a_list(tmp_path):
    p = one(tmp_path, {"a.yaml": "entities: {name: driver}\n"})
    assert (p.file, p.field) == ("features/a.yaml", "entities")


def test_entry_not_a_mapping(tmp_path):
    p = one(tmp_path, {"a.yaml": "entities:\n  - driver\n"})
    assert (p.file, p.field) == ("features/a.yaml", "entities[0]")


@pytest.mark.parametrize("view_fields, field, text", [
    ({"entities": "[nobody]"}, "entities", "entity 'nobody' does not exist"),
    ({"source": "nowhere"}, "source", "source 'nowhere' does not exist"),
])
def test_dangling_reference_in_a_view(tmp_path, view_fields, field, text):
    p = one(tmp_path, {"base.yaml": ENTITY + SOURCE, "v.yaml": yaml_view(**view_fields)})
    assert (p.file, p.kind, p.name, p.field) == ("features/v.yaml", "feature_view", "driver_stats", field)
    assert (p.rule, p.message) == ("DANGLING_REFERENCE", text)
    assert p.hint


def test_dangling_reference_in_a_service(tmp_path):
    svc = "feature_services:\n  - {name: ranking, version: 1.0.0, owner: me, features: ['driver_stats:nope']}\n"
    p = one(tmp_path, {"base.yaml": ENTITY + SOURCE, "v.yaml": yaml_view(), "s.yaml": svc})
    assert (p.file, p.kind, p.name, p.field) == ("features/s.yaml", "feature_service", "ranking", "features")
    assert "feature 'nope' does not exist in view 'driver_stats'" in p.message
    assert "conv_rate, trips" in p.hint


def test_duplicate_names_across_two_files_name_both(tmp_path):
    p = one(tmp_path, {"a.yaml": ENTITY, "b.yaml": ENTITY + SOURCE, "v.yaml": yaml_view()})
    assert (p.kind, p.name, p.field) == ("entity", "driver", "name")
    assert "features/a.yaml" in p.message and "features/b.yaml" in p.message


def test_duplicate_between_yaml_and_python(tmp_path):
    p = one(tmp_path, {"a.yaml": ENTITY, "b.py": PY_HEADER})
    assert "features/a.yaml" in p.message and "features/b.py" in p.message


@pytest.mark.parametrize("view_fields, field, text", [
    ({"version": "'1.0'"}, "version", "invalid semantic version '1.0'"),
    ({"version": "1.0"}, "version", "invalid semantic version 1.0"),
    ({"version": "-"}, "version", "Field required"),
    ({"ttl": "1 day"}, "ttl", "invalid duration '1 day'"),
    ({"ttl": "5"}, "ttl", "a bare number is ambiguous"),
    ({"freshness_sla": "soon"}, "freshness_sla", "invalid duration 'soon'"),
    ({"features": "[{name: conv_rate, dtype: double}]"}, "features.conv_rate.dtype", "unknown dtype 'double'"),
    ({"features": "[{name: x, dtype: string, constraints: {min: 0}}]"}, "features.x", "numeric dtype"),
    ({"features": "[{name: x, dtype: int64, constraints: {min: 2, max: 1}}]"}, "features.x.constraints",
     "min (2) is greater than max (1)"),
    ({"features": "[{name: x, dtype: int64, colour: red}]"}, "features.x.colour", "Extra inputs"),
    ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
    ({"owner": "-"}, "owner", "Field required"),
    ({"entities": "[]"}, "entities", "at least 1"),
])
def test_bad_view_fields_name_file_object_and_field(tmp_path, view_fields, field, text):
    p = one(tmp_path, {"base.yaml": ENTITY + SOURCE, "v.yaml": yaml_view(**view_fields)})
    assert (p.file, p.kind, p.name, p.field) == ("features/v.yaml", "feature_view", "driver_stats", field)
    assert text in p.message
    assert "features/v.yaml" in p.where() and "driver_stats" in p.where() and field in p.where()


def test_unnamed_object_is_named_by_position(tmp_path):
    p = one(tmp_path, {"a.yaml": "entities:\n  - {join_key: driver_id}\n"})
    assert (p.kind, p.name, p.field) == ("entity", "entities[0]", "name")


def test_bad_entity_dtype(tmp_path):
    p = one(tmp_path, {"a.yaml": "entities:\n  - {name: driver, join_key: driver_id, dtype: float64}\n"})
    assert (p.file, p.kind, p.name, p.field) == ("features/a.yaml", "entity", "driver", "dtype")


def test_every_problem_is_reported_at_once(tmp_path):
    found = problems(tmp_path, {"a.yaml": "views: []\n", "b.yaml": "entities:\n  - {name: d}\n",
                                "c.yaml": "entities: [\n"})
    assert sorted({p.file for p in found}) == ["features/a.yaml", "features/b.yaml", "features/c.yaml"]


# --- Python definition files --------------------------------------------------------

def test_python_definitions_load(tmp_path):
    py = PY_HEADER + textwrap.dedent("""\
        stats = FeatureView(name="driver_stats", version="1.0.0", entities=[driver], source=hourly,
                            owner="me", features=[Feature(name="conv_rate", dtype="float32")])
        """)
    defs, origins = load(tmp_path, {"defs.py": py})
    assert defs.feature_views["driver_stats"].entities == ["driver"]
    assert origins[("feature_view", "driver_stats")] == "features/defs.py"


def test_python_file_that_raises_names_file_and_line(tmp_path):
    p = one(tmp_path, {"defs.py": PY_HEADER + "x = 1\nraise RuntimeError('boom')\n"})
    assert (p.file, p.line) == ("features/defs.py", 5)
    assert "RuntimeError: boom" in p.message
    assert "features/defs.py:5" in p.where()


def test_python_error_inside_a_helper_function_points_at_the_file(tmp_path):
    p = one(tmp_path, {"defs.py": "def make():\n    return {}['missing']\n\nmake()\n"})
    assert (p.file, p.line) == ("features/defs.py", 2)
    assert "KeyError" in p.message


def test_python_syntax_error(tmp_path):
    p = one(tmp_path, {"defs.py": "x = (\n"})
    assert p.file == "features/defs.py" and p.line == 1 and "syntax error" in p.message


def test_python_import_error(tmp_path):
    p = one(tmp_path, {"defs.py": "import not_a_module_anywhere\n"})
    assert p.file == "features/defs.py" and p.line == 1
    assert "ModuleNotFoundError" in p.message


@pytest.mark.parametrize("bad, field, text", [
    ({"ttl": '"forever"'}, "ttl", "invalid duration 'forever'"),
    ({"version": '"1.0"'}, "version", "invalid semantic version"),
    ({"colour": '"red"'}, "colour", "Extra inputs are not permitted"),
    ({"owner": '""'}, "owner", "at least 1"),
])
def test_python_view_with_a_bad_field(tmp_path, bad, field, text):
    kwargs = {"name": '"driver_stats"', "version": '"1.0.0"', "entities": "[driver]", "source": "hourly",
              "owner": '"me"', "features": '[Feature(name="conv_rate", dtype="float32")]', **bad}
    call = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    p = one(tmp_path, {"defs.py": PY_HEADER + f"\nstats = FeatureView({call})\n"})
    assert (p.file, p.kind, p.name, p.field) == ("features/defs.py", "feature_view", "driver_stats", field)
    assert p.line == 5
    assert text in p.message


def test_python_feature_with_a_bad_dtype_names_the_feature(tmp_path):
    py = PY_HEADER + textwrap.dedent("""\
        stats = FeatureView(name="driver_stats", version="1.0.0", entities=[driver], source=hourly,
                            owner="me", features=[Feature(name="conv_rate", dtype="double")])
        """)
    p = one(tmp_path, {"defs.py": py})
    assert (p.file, p.line, p.field) == ("features/defs.py", 5, "dtype")
    assert "conv_rate" in p.where()
    assert "unknown dtype 'double'" in p.message


def test_python_dangling_reference(tmp_path):
    py = PY_HEADER + textwrap.dedent("""\
        stats = FeatureView(name="driver_stats", version="1.0.0", entities=["rider"], source=hourly,
                            owner="me", features=[Feature(name="conv_rate", dtype="float32")])
        """)
    p = one(tmp_path, {"defs.py": py})
    assert (p.file, p.kind, p.name, p.field) == ("features/defs.py", "feature_view", "driver_stats", "entities")
    assert p.rule == "DANGLING_REFERENCE"


def test_python_object_bound_to_two_names_is_collected_once(tmp_path):
    defs, _ = load(tmp_path, {"defs.py": PY_HEADER + "the_driver = driver\n"})
    assert list(defs.entities) == ["driver"]


def test_python_duplicate_names_in_one_file(tmp_path):
    p = one(tmp_path, {"defs.py": PY_HEADER + "again = Entity(name='driver', join_key='other_id')\n"})
    assert (p.file, p.kind, p.name) == ("features/defs.py", "entity", "driver")


def test_underscore_files_are_not_definitions(tmp_path):
    defs, _ = load(tmp_path, {"_helpers.py": "raise RuntimeError('not loaded')\n", "a.yaml": ENTITY})
    assert list(defs.entities) == ["driver"]


def test_python_feature_given_as_dict_is_named_like_yaml(tmp_path):
    py = PY_HEADER + textwrap.dedent("""\
        stats = FeatureView(name="driver_stats", version="1.0.0", entities=[driver], source=hourly, owner="me",
                            features=[{"name": "ok", "dtype": "int64"}, {"name": "conv_rate", "dtype": "double"}])
        """)
    p = one(tmp_path, {"defs.py": py})
    assert (p.file, p.kind, p.name, p.field) == ("features/defs.py", "feature_view", "driver_stats",
                                                 "features.conv_rate.dtype")


def test_an_empty_section_is_no_objects_and_a_scalar_section_is_an_error(tmp_path):
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "a.yaml").write_text("entities:\nfeature_views:\n")
    defs, _ = load_definitions(tmp_path, ["features/*.yaml"])
    assert not defs.entities and not defs.feature_views
    (tmp_path / "features" / "a.yaml").write_text("entities: driver\n")
    with pytest.raises(DefinitionError) as err:
        load_definitions(tmp_path, ["features/*.yaml"])
    (problem,) = err.value.problems
    assert problem.file == "features/a.yaml" and problem.field == "entities" and "list" in problem.message
