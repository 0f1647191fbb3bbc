"""The digest of what `pyproject.toml` asks to install (requires-python, dependencies,
optional dependencies, `[tool.uv]`), recorded in the requirement files `make lock` writes
and checked by `tools/install.sh`, so an install never uses a lock older than the
project's requirements. Standard library only: it runs before anything is installed."""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path


def lock_digest(pyproject: Path) -> str:
    """sha256 of the install-relevant tables of `pyproject`, as canonical JSON."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data.get("project", {})
    relevant = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "tool.uv": data.get("tool", {}).get("uv", {}),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode("utf-8")).hexdigest()


if __name__ == "__main__":
    print(lock_digest(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")))
