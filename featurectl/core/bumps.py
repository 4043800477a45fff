"""Semantic-version bumps: their order, and what a required bump allows (the 0.x rule)."""
from __future__ import annotations

from typing import Literal

import semver

Bump = Literal["none", "patch", "minor", "major"]
BUMPS: tuple[Bump, ...] = ("none", "patch", "minor", "major")


def rank(bump: Bump) -> int:
    return BUMPS.index(bump)


def largest(bumps) -> Bump:
    return max(bumps, key=rank, default="none")


def declared_bump(applied: str, declared: str) -> Bump:
    """What the author declared, read off the two versions (none when not increased)."""
    old, new = semver.Version.parse(applied), semver.Version.parse(declared)
    if new <= old:
        return "none"
    if new.major != old.major:
        return "major"
    if new.minor != old.minor:
        return "minor"
    return "patch"


def minimum_version(applied: str, required: Bump) -> str:
    """The smallest version a change of `required` size may declare. Below 1.0.0 one level
    less is needed: a breaking change bumps the minor, anything smaller the patch."""
    old = semver.Version.parse(applied)
    if required == "none":
        return str(old)
    if old.major == 0:
        required = "minor" if required == "major" else "patch"
    bumped = {"major": old.bump_major, "minor": old.bump_minor, "patch": old.bump_patch}[required]()
    return str(bumped)


def is_lower(version: str, other: str) -> bool:
    return semver.Version.parse(version) < semver.Version.parse(other)
