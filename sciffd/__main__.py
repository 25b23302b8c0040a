"""``python -m sciffd``: the ``sciffd`` command (see :mod:`sciffd.cli`)."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
