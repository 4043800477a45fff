"""featurectl: feature definitions as code, planned, version-checked, and served fast."""
from __future__ import annotations

from typing import TYPE_CHECKING

from featurectl.core.model import Entity, Feature, FeatureService, FeatureView, FileSource, QuerySource

__all__ = ["Entity", "Feature", "FeatureService", "FeatureStore", "FeatureView", "FileSource", "QuerySource"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from featurectl.sdk import FeatureStore


def __getattr__(name: str):
    # FeatureStore pulls in the data stack lazily so that definition files stay cheap to import.
    if name == "FeatureStore":
        from featurectl.sdk import FeatureStore

        return FeatureStore
    raise AttributeError(f"module 'featurectl' has no attribute {name!r}")
