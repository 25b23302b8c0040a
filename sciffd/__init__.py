"""sciffd: score-based diffusion models in function space, for physics.

Fields are functions on a domain; sciffd learns their distributions with
Gaussian noise measures that are trace class, samples them at any
resolution, and conditions them on observations. See ``docs/`` for the
user guide and the theory.
"""

from __future__ import annotations

__version__ = "0.1.0"


class SciffdWarning(UserWarning):
    """Warnings issued by sciffd about choices a user can act on."""


def load(name_or_path, **kwargs):
    """Load a built-in model by name (``"ns2d"``) or a trained model directory.

    See :func:`sciffd.pipeline.load`.
    """
    from .pipeline import load as _load

    return _load(name_or_path, **kwargs)


__all__ = ["SciffdWarning", "__version__", "load"]
