"""How the CLI shows a path: relative to the project, so output reads the same on every machine.

Absolute paths make review comments, CI logs and README examples differ per checkout. A path
inside the project is shown relative to its root; a path outside it (a temporary folder) is shown
as the user wrote it, since no relative form would be shorter or clearer.
"""

from __future__ import annotations

from pathlib import Path


def project_root(start: Path | None = None) -> Path | None:
    """The nearest folder holding Pulumi.yaml; None outside a project (rtdi diff works there)."""
    here = (start or Path.cwd()).resolve()
    return next((f for f in (here, *here.parents) if (f / "Pulumi.yaml").is_file()), None)


def shown(path: Path | str, root: Path | None = None) -> str:
    path = Path(path)
    root = root or project_root()
    if root is not None:
        try:
            return str(path.resolve().relative_to(root)) or "."
        except ValueError:
            pass
    return str(path)
