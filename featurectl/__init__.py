"""featurectl: feature definitions as code, planned, version-checked, and served fast."""
from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Entity", "Feature", "FeatureService", "FeatureStore", "FeatureView", "FileSource", "QuerySource"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from featurectl.core.model import Entity, Feature, FeatureService, FeatureView, FileSource, QuerySource
    from featurectl.sdk import FeatureStore

# The definition classes are imported on first use, like FeatureStore (which pulls in the data
# stack): `import featurectl.cli.main` then loads no pydantic, so the CLI sets its process's
# collector threshold before pydantic and the models are built (docs/benchmarks.md, stream
# imports). `from featurectl import Entity` (or `*`) in a definition file imports them as before.
_MODEL_NAMES = frozenset(__all__) - {"FeatureStore"}


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        from featurectl.core import model

        value = getattr(model, name)
    elif name == "FeatureStore":
        from featurectl.sdk import FeatureStore

        value = FeatureStore
    else:
        raise AttributeError(f"module 'featurectl' has no attribute {name!r}")
    globals()[name] = value  # later lookups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
