"""Every backend is built the one way (docs/architecture.md, "How to add a backend"): listed in
its port's BACKENDS under the `type` its config model declares, with every member the port's
Protocol names."""
from __future__ import annotations

import inspect
import typing

import pytest
import featurectl.offline as offline
import featurectl.online as online
import featurectl.registry as registry
from featurectl.backends import backend_class
from featurectl.offline.base import OfflineStore, OfflineStoreError
from featurectl.offline.config import OfflineConfig
from featurectl.online.base import OnlineStore, OnlineStoreError
from featurectl.online.config import OnlineConfig
from featurectl.registry.base import Registry, RegistryError
from featurectl.registry.config import RegistryConfig

PORTS = {
    "registry": (registry.BACKENDS, Registry, RegistryConfig, RegistryError),
    "offline_store": (offline.BACKENDS, OfflineStore, OfflineConfig, OfflineStoreError),
    "online_store": (online.BACKENDS, OnlineStore, OnlineConfig, OnlineStoreError),
}


def config_types(union: object) -> set[str]:
    """The `type` literals of a discriminated union of config models."""
    members = typing.get_args(typing.get_args(union)[0]) or (typing.get_args(union)[0],)
    return {typing.get_args(m.model_fields["type"].annotation)[0] for m in members}


def protocol_members(protocol: type) -> set[str]:
    return {name for name in vars(protocol) if not name.startswith("_")}


@pytest.mark.parametrize("port", PORTS)
def test_every_config_type_has_a_backend_and_no_backend_lacks_a_config(port):
    backends, _, union, _ = PORTS[port]
    assert set(backends) == config_types(union)


@pytest.mark.parametrize("port, type_", [(p, t) for p, (b, *_) in PORTS.items() for t in b])
def test_every_backend_has_what_its_port_requires(port, type_):
    backends, protocol, _, error = PORTS[port]
    cls = backend_class(backends, type_, port, error)
    required = protocol_members(protocol)
    assert {"from_config", "close"} <= required
    assert sorted(m for m in required if not callable(getattr(cls, m, None))) == []
    assert isinstance(inspect.getattr_static(cls, "from_config"), classmethod)


@pytest.mark.parametrize("port", PORTS)
def test_an_unknown_type_names_the_port_and_the_known_types(port):
    backends, _, _, error = PORTS[port]
    with pytest.raises(error, match=f"unknown {port} type 'nope'; use one of {', '.join(backends)}"):
        backend_class(backends, "nope", port, error)
