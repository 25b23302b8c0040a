"""File-system helpers shared by every writer of the package (lowest layer)."""

from __future__ import annotations

import os

__all__ = ["ordinary_permissions"]


def ordinary_permissions(path: str | os.PathLike) -> None:
    """Give ``path`` the permissions of an ordinary new file, ``0o666 & ~umask``.

    ``tempfile.mkstemp``, through which every output is written atomically,
    creates files readable by their owner only.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
