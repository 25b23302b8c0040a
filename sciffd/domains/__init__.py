"""Physical domains built on the sciffd core.

A domain is written on top of the core the way a user's own code would be:
it imports :mod:`sciffd.grids`, :mod:`sciffd.spectral`, :mod:`sciffd.noise`
and friends, and nothing in the core imports a domain.

``fluids``
    2D incompressible Navier-Stokes on the torus (pseudo-spectral solver),
    the ``ns2d`` dataset recipe and its generator.
"""
