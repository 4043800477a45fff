"""`featurectl init`: render a working repository from a template directory."""
from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from featurectl.core.errors import UsageError

INIT = "init"  # templates/init/<name>/: one scaffold per `featurectl init --template` name


def templates_root() -> Path:
    """The templates/ folder: in a source checkout at the top of the repository, in an
    installed wheel inside the package (pyproject.toml maps it to featurectl/templates)."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "templates", package.parent / "templates"):
        if (candidate / INIT).is_dir():
            return candidate
    raise UsageError("featurectl's templates are missing from this installation", hint="reinstall featurectl")


def sample_rows(now: datetime, drivers=(1001, 1002, 1003), hours: int = 48) -> list[dict]:
    """Hourly driver statistics ending at the last full hour, so a fresh repository's values
    are within the views' ttl on the first online read."""
    rng = random.Random(42)
    end = now.replace(minute=0, second=0, microsecond=0)
    return [
        {"driver_id": d, "event_timestamp": (end - timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%S"),
         "conv_rate": round(rng.random(), 4), "acc_rate": round(rng.uniform(0.5, 1.0), 4),
         "avg_daily_trips": rng.randint(0, 40)}
        for h in range(hours, 0, -1) for d in drivers
    ]


def create(name: str, template: str, parent: Path, now: datetime | None = None) -> Path:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise UsageError(f"invalid project name {name!r}", hint="use lowercase letters, digits and _, starting with a letter")
    scaffolds = templates_root() / INIT
    known = sorted(p.name for p in scaffolds.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    if template not in known:
        raise UsageError(f"unknown template {template!r}", hint=f"available: {', '.join(known)}")
    source = scaffolds / template
    target = parent / name
    if target.exists() and any(target.iterdir()):
        raise UsageError(f"{target} already exists and is not empty", hint="choose another name or --dir")
    env = Environment(loader=FileSystemLoader(str(source)), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    context = {"project": name, "rows": sample_rows(now or datetime.now(timezone.utc))}
    try:
        _render(source, target, env, context)
    except OSError as exc:
        raise UsageError(f"cannot create {target}: {exc.strerror or exc}",
                         hint="choose a --dir that exists (or can be created) and is writable") from None
    return target


def _render(source: Path, target: Path, env: Environment, context: dict) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(source)
        dest = target / (str(rel)[:-3] if rel.suffix == ".j2" else str(rel))
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel.suffix == ".j2":
            dest.write_text(env.get_template(rel.as_posix()).render(context))
        else:
            dest.write_bytes(path.read_bytes())
