"""A time-conditioned Fourier neural operator on the torus, as a score model.

The network ``F(x, c)`` maps fields ``x`` of shape ``(B, C, *S)`` on the
torus ``T^d`` (d = 1, 2, 3) and a noise level ``c`` to fields of the same
shape. With ``h_0 = P x`` (a pointwise lifting to ``width`` channels), each
of its ``layers`` Fourier layers computes

    h_{l+1} = GELU( (1 + gamma_l(c)) * (K_l h_l + W_l h_l) + beta_l(c) ),

    (K_l h)^[m] = R_l[m] h^[m]    for |m_i| < modes_i,   0 otherwise,

and a pointwise projection ``Q`` (two 1x1 layers with a GELU between) maps
the last ``h`` back to ``C`` channels. ``h^[m]`` are the half-spectrum
Fourier coefficients (``norm="forward"``, so they do not depend on the
resolution), ``R_l[m]`` a complex ``width x width`` matrix per kept mode,
``W_l`` a pointwise (1x1) linear layer with bias, and ``gamma_l, beta_l``
per-channel scale and shift (FiLM) produced by a small MLP from Fourier
features of ``c``.

**Any grid.** The kept modes ``|m_i| < modes_i`` are integer wavenumbers,
the same set of functions at every resolution: a grid too coarse to hold
them all uses the ones it has (``|m_i| <= (N_i - 1) // 2``, Nyquist modes
excluded), a finer grid leaves the extra modes to the pointwise path. So
one set of weights acts on the same function-space modes on a ``32^2``, a
``48 x 64`` or a ``256^2`` grid. There are no coordinate channels: the
operator commutes with translations of the torus, like the measures it
learns.

**Aliasing.** The spectral layers are exactly resolution invariant; the
pointwise GELU is not: it creates harmonics beyond the band of its input,
which a coarse grid folds back onto its own modes. So a band-limited input
at ``N`` and ``2N`` gives outputs whose shared modes agree up to that
aliasing, which decays quickly with ``N`` (GELU is smooth) -- on a grid
that resolves the fields, far below float32 rounding.

**Real operator.** The matrices on the ``m_x = 0`` plane of the half
spectrum are used in their Hermitian-symmetrised form,
``R[-m] = conj(R[m])``, so that ``K_l`` maps real fields to real fields
whatever FFT library inverts the spectrum.

:class:`FNODenoiser` wraps the network as a :class:`~sciffd.models.base.ScoreModel`
with the preconditioning of Karras et al. (2022).

References
----------
Z. Li et al., Fourier neural operator for parametric partial differential
equations, arXiv:2010.08895.
T. Karras, M. Aittala, T. Aila, S. Laine, Elucidating the design space of
diffusion-based generative models, arXiv:2206.00364.
E. Perez et al., FiLM: visual reasoning with a general conditioning layer,
arXiv:1709.07871.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as nnf

from ..grids import TorusGrid
from ..noise import GaussianMeasure
from ..sde import VPProcess
from .base import ScoreModel, check_noise, check_process
from .mean import MeanField

__all__ = ["FNO", "FNODenoiser", "SpectralConv", "default_noise"]

#: the architecture options of :class:`FNO` that a configuration records
FNO_OPTIONS = ("in_channels", "out_channels", "width", "layers", "modes", "ndim",
               "time_features", "time_width")


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return int(value)


def _modes_tuple(modes: Any, ndim: int) -> tuple[int, ...]:
    if isinstance(modes, (int, np.integer)) and not isinstance(modes, bool):
        modes = (int(modes),) * ndim
    try:
        modes = tuple(modes)
    except TypeError:
        raise TypeError(f"modes={modes!r} must be an integer or {ndim} integers") from None
    if len(modes) != ndim:
        raise ValueError(f"modes={modes!r} must have {ndim} entries, one per axis")
    return tuple(_positive_int(k, "modes") for k in modes)


def _kept(shape: Sequence[int], modes: Sequence[int]) -> tuple[int, ...]:
    """Modes kept per axis on a grid: ``k`` such that ``|m| < k`` (Nyquist excluded)."""
    return tuple(min(k, (n - 1) // 2 + 1) for n, k in zip(shape, modes, strict=True))


def _compact_index(k: int, n: int) -> list[int]:
    """Positions of ``m = 0 .. k-1, -(k-1) .. -1`` on an axis of length ``n``."""
    return list(range(k)) + list(range(n - k + 1, n))


class SpectralConv(nn.Module):
    """Spectral convolution ``(K h)^[m] = R[m] h^[m]`` for ``|m_i| < modes_i``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input ``h`` and of the output.
    modes : tuple of int
        Kept modes per axis ``(k_1, .., k_d)``: the integer wavenumbers
        ``|m_i| < k_i``. On the last (real-FFT) axis these are
        ``m = 0 .. k_d - 1``.

    Notes
    -----
    The weights are stored as real numbers, shape
    ``(2 k_1 - 1, .., 2 k_{d-1} - 1, k_d, in, out, 2)`` (real and imaginary
    parts last), the leading axes in FFT order ``0, 1, .., k-1, -(k-1), .., -1``.
    The kept modes are gathered mode-major, ``(M, B, in)``, in one copy, and
    mixed by one complex batched matrix product ``(M, B, in) @ (M, in, out)``.
    On the reference CPU (batch 16, 32 channels, 64^2, 12 modes, forward
    and backward) this layout took the mixing from about 17 ms with a complex
    ``einsum`` to about 5 ms, next to 15 ms for the two FFTs.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: Sequence[int]) -> None:
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.modes = tuple(_positive_int(k, "modes") for k in modes)
        if not 1 <= len(self.modes) <= 3:
            raise ValueError(f"modes={modes!r} must have 1, 2 or 3 entries")
        mode_shape = tuple(2 * k - 1 for k in self.modes[:-1]) + (self.modes[-1],)
        # complex entries of variance 1 / in_channels: the layer keeps the
        # energy of the modes it acts on
        std = 1.0 / math.sqrt(2 * self.in_channels)
        self.weight = nn.Parameter(
            torch.randn(mode_shape + (self.in_channels, self.out_channels, 2)) * std
        )
        self._index_cache: dict = {}

    @property
    def ndim(self) -> int:
        return len(self.modes)

    def _indices(self, shape: tuple[int, ...], device: torch.device):
        """Flat indices, over the merged leading axes, of the modes kept on ``shape``.

        Returns ``(kept, grid_index, weight_index, mirror)``: the kept count
        per axis; where the kept modes sit in the grid's half spectrum and in
        the weights; and, for each kept mode, the position of its negative.
        """
        key = (shape, str(device))
        if key not in self._index_cache:
            kept = _kept(shape, self.modes)
            lead = kept[:-1]
            grid_pos = [_compact_index(k, n) for k, n in zip(lead, shape[:-1], strict=True)]
            weight_pos = [_compact_index(k, 2 * K - 1)
                          for k, K in zip(lead, self.modes[:-1], strict=True)]
            compact = [2 * k - 1 for k in lead]

            def flat(positions: list, dims: Sequence[int]) -> np.ndarray:
                if not positions:
                    return np.zeros(1, dtype=np.int64)
                mesh = np.meshgrid(*positions, indexing="ij")
                return np.ravel_multi_index(tuple(m.ravel() for m in mesh), tuple(dims))

            grid_index = flat(grid_pos, shape[:-1])
            weight_index = flat(weight_pos, [2 * K - 1 for K in self.modes[:-1]])
            if compact:
                mesh = np.meshgrid(*[np.arange(c) for c in compact], indexing="ij")
                mirror = np.ravel_multi_index(tuple((-m.ravel()) % c for m, c in
                                                    zip(mesh, compact, strict=True)),
                                              tuple(compact))
            else:
                mirror = np.zeros(1, dtype=np.int64)
            self._index_cache[key] = (kept,) + tuple(
                torch.as_tensor(i, dtype=torch.long, device=device)
                for i in (grid_index, weight_index, mirror))
        return self._index_cache[key]

    def mixing_matrices(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The complex matrices ``R[m]`` of the modes kept on ``shape``, ``(M', kx, in, out)``.

        ``M'`` counts the kept positions of the leading axes (flattened),
        ``kx`` those of the last axis; ``R[-m] = conj(R[m])`` on ``m_x = 0``.
        """
        kept, _, weight_index, mirror = self._indices(tuple(shape), self.weight.device)
        w = torch.view_as_complex(self.weight)
        lead = w.shape[: self.ndim - 1]
        w = w.reshape((math.prod(lead), w.shape[self.ndim - 1]) + w.shape[self.ndim:])
        w = w[:, : kept[-1]]
        if weight_index.numel() != w.shape[0]:
            w = w.index_select(0, weight_index)
        plane = w[:, 0]
        plane = 0.5 * (plane + plane.index_select(0, mirror).conj())
        return torch.cat([plane.unsqueeze(1), w[:, 1:]], dim=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Apply the layer to ``h`` of shape ``(B, in, *S)``; returns ``(B, out, *S)``."""
        d = self.ndim
        shape = tuple(h.shape[-d:])
        B = h.shape[0]
        kept, grid_index, _, _ = self._indices(shape, h.device)
        kx = kept[-1]
        axes = tuple(range(-d, 0))
        h_hat = torch.fft.rfftn(h, dim=axes, norm="forward")

        # gather the kept modes mode-major, (M', kx, B, in), in one copy
        h_hat = h_hat.reshape(B, self.in_channels, -1, h_hat.shape[-1])[..., :kx]
        g = h_hat.permute(2, 3, 0, 1).index_select(0, grid_index)
        w = self.mixing_matrices(shape)
        M = grid_index.numel() * kx
        out = torch.bmm(g.reshape(M, B, self.in_channels),
                        w.reshape(M, self.in_channels, self.out_channels))

        # scatter into a zero half spectrum; irfftn zero-pads the last axis
        spec = out.new_zeros((B, self.out_channels, math.prod(shape[:-1]), kx))
        spec.permute(2, 3, 0, 1).index_copy_(
            0, grid_index, out.reshape(grid_index.numel(), kx, B, self.out_channels))
        spec = spec.reshape((B, self.out_channels) + shape[:-1] + (kx,))
        return torch.fft.irfftn(spec, s=shape, dim=axes, norm="forward")


class _Pointwise(nn.Module):
    """A 1x1 linear layer on ``(B, C, *S)``: ``y = W h + b`` at every point."""

    def __init__(self, in_channels: int, out_channels: int, zero: bool = False) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_channels)
        w = torch.empty(out_channels, in_channels).uniform_(-bound, bound)
        self.weight = nn.Parameter(torch.zeros_like(w) if zero else w)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, C = h.shape[:2]
        flat = h.reshape(B, C, -1)
        O = self.weight.shape[0]
        # one batched GEMM; conv1d with a 1x1 kernel was 10x slower backwards on CPU
        y = torch.baddbmm(self.bias.reshape(1, O, 1).expand(B, O, flat.shape[-1]),
                          self.weight.expand(B, O, C), flat)
        return y.reshape((B, O) + tuple(h.shape[2:]))


class _TimeEmbedding(nn.Module):
    """Fourier features of ``c`` and an MLP: ``c -> (B, time_width)``.

    The features are ``cos(2 pi f_j c), sin(2 pi f_j c)`` with frequencies
    ``f_j`` spaced geometrically from 1/8 to 16 cycles per unit of ``c``;
    ``c = log(sigma) / 4`` spans about ``[-1.2, 1.3]`` over the noise levels
    of the default VP process, so the slowest feature is monotone over the
    range and one period of the fastest spans a factor ``e^(1/4) = 1.3`` in
    ``sigma``.
    """

    def __init__(self, features: int, width: int) -> None:
        super().__init__()
        freqs = torch.logspace(math.log10(1 / 8), math.log10(16.0), features)
        self.register_buffer("freqs", 2 * math.pi * freqs, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * features, width), nn.GELU(),
                                 nn.Linear(width, width), nn.GELU())

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        phase = c.reshape(-1, 1) * self.freqs
        return self.mlp(torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1))


class FNO(nn.Module):
    """Time-conditioned Fourier neural operator ``F(x, c)`` on the torus.

    Parameters
    ----------
    in_channels : int
        Channels ``C`` of the input field.
    out_channels : int, optional
        Channels of the output (default ``in_channels``).
    width : int
        Channels of the hidden fields (default 24).
    layers : int
        Number of Fourier layers (default 4).
    modes : int or tuple of int
        Kept Fourier modes per axis, ``|m_i| < modes_i`` (default 12).
    ndim : int
        Dimension ``d`` of the torus (1, 2 or 3; default 2).
    time_features : int
        Number of Fourier-feature frequencies of ``c`` (default 16).
    time_width : int
        Width of the time MLP (default 64).

    Notes
    -----
    The defaults (width 24, 4 layers, 12 modes) are sized for ``64^2``
    vorticity: the kept modes ``|m| <= 11`` hold nearly all of its
    enstrophy, and the network has 1.3 M parameters (5.2 MB in float32),
    98% of them in the spectral weights (``4 x 23 x 12`` complex
    ``24 x 24`` matrices). Width 32 would cost 9.2 MB and 40-70% more time
    per training step on 2 CPU cores, most of it in FFTs of more channels
    (``benchmarks/bench_training.py``). The last 1x1
    layer starts at zero, so an untrained network outputs ``F = 0`` and the
    denoiser starts as ``c_skip x``.

    Examples
    --------
    >>> net = FNO(1, width=8, layers=2, modes=4)
    >>> x = torch.zeros(3, 1, 16, 24)
    >>> net(x, torch.zeros(3)).shape
    torch.Size([3, 1, 16, 24])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        width: int = 24,
        layers: int = 4,
        modes: int | Sequence[int] = 12,
        ndim: int = 2,
        time_features: int = 16,
        time_width: int = 64,
    ) -> None:
        super().__init__()
        if ndim not in (1, 2, 3) or isinstance(ndim, bool):
            raise ValueError(f"ndim={ndim!r} must be 1, 2 or 3")
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = self.in_channels if out_channels is None \
            else _positive_int(out_channels, "out_channels")
        self.width = _positive_int(width, "width")
        self.layers = _positive_int(layers, "layers")
        self.modes = _modes_tuple(modes, ndim)
        self.ndim = int(ndim)
        self.time_features = _positive_int(time_features, "time_features")
        self.time_width = _positive_int(time_width, "time_width")

        self.lift = _Pointwise(self.in_channels, self.width)
        self.spectral = nn.ModuleList(SpectralConv(self.width, self.width, self.modes)
                                      for _ in range(self.layers))
        self.skip = nn.ModuleList(_Pointwise(self.width, self.width)
                                  for _ in range(self.layers))
        self.time = _TimeEmbedding(self.time_features, self.time_width)
        # one head for all FiLM parameters; zero at start: layers start unmodulated
        self.film = nn.Linear(self.time_width, 2 * self.width * self.layers)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.project = nn.Sequential(_Pointwise(self.width, 2 * self.width), nn.GELU(),
                                     _Pointwise(2 * self.width, self.out_channels, zero=True))

    def options(self) -> dict:
        """The constructor arguments, JSON-ready (``FNO(**net.options())`` rebuilds it)."""
        out = {name: getattr(self, name) for name in FNO_OPTIONS}
        out["modes"] = list(self.modes)
        return out

    def parameter_count(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        """``F(x, c)`` for ``x`` of shape ``(B, C_in, *S)`` and ``c`` of shape ``(B,)``.

        Returns
        -------
        torch.Tensor, shape ``(B, C_out, *S)``
        """
        return self.project(self.features(x, c_noise)[-1])

    def features(self, x: torch.Tensor, c_noise: torch.Tensor) -> list[torch.Tensor]:
        """The hidden fields ``[h_1, .., h_L]`` after each Fourier layer, ``(B, width, *S)``."""
        if x.ndim != self.ndim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x has shape {tuple(x.shape)}; expected (B, {self.in_channels}, *S) with "
                f"{self.ndim} spatial axes"
            )
        B = x.shape[0]
        c_noise = torch.as_tensor(c_noise, dtype=x.dtype, device=x.device).reshape(-1)
        if c_noise.numel() == 1 and B != 1:
            c_noise = c_noise.expand(B)
        if c_noise.shape != (B,):
            raise ValueError(f"c_noise has shape {tuple(c_noise.shape)}; expected ({B},)")
        film = self.film(self.time(c_noise)).reshape(B, self.layers, 2, self.width)
        unsqueeze = (1,) * self.ndim
        h = self.lift(x)
        hidden = []
        for layer, (spectral, skip) in enumerate(zip(self.spectral, self.skip, strict=True)):
            scale = film[:, layer, 0].reshape((B, self.width) + unsqueeze)
            shift = film[:, layer, 1].reshape((B, self.width) + unsqueeze)
            y = spectral(h) + skip(h)
            h = nnf.gelu(torch.addcmul(y + shift, y, scale))
            hidden.append(h)
        return hidden


def default_noise(grid: TorusGrid) -> GaussianMeasure:
    """The default noise measure of a model trained on ``grid``.

    ``Matern.unit_variance(alpha=2, tau=2 pi 4 / L, ndim)``: eigenvalues flat up
    to the fourth harmonic of the domain and decaying like ``|k|^-4`` after
    it (trace class in 1, 2 and 3 dimensions), scaled to unit pointwise
    variance. Unit variance is what EDM's ``c_in``, ``c_skip``, ``c_out``
    assume: they are derived for ``x = u_0 + sigma n`` with ``n`` of unit
    variance at each point, so that ``sigma`` is the noise-to-signal
    ratio of standardised data.
    """
    from ..noise import Matern

    if not isinstance(grid, TorusGrid):
        raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
    tau = 2 * math.pi * 4 / min(grid.lengths)
    return Matern.unit_variance(2.0, tau, grid.ndim, grid.lengths)


def _per_channel(value: Any, channels: int, name: str) -> tuple[float, ...]:
    values = np.atleast_1d(np.asarray(value, dtype=np.float64)).reshape(-1)
    if values.size == 1:
        values = np.repeat(values, channels)
    if values.size != channels or not np.isfinite(values).all():
        raise ValueError(f"{name}={value!r} must be one finite number or {channels} of them")
    return tuple(float(v) for v in values)


class FNODenoiser(ScoreModel):
    """An :class:`FNO` as the denoiser ``D(u, t) ~ E[u_0 | u_t = u]``, with EDM preconditioning.

    For ``u_t = a(t) u_0 + s(t) xi`` the rescaled field ``x = u_t / a(t)``
    is ``u_0 + sigma xi`` with ``sigma = s(t) / a(t)``. Inside, the data
    are standardised per channel, ``x' = (x - m) / std``, so the noise
    level seen by channel ``c`` is ``sigma_c = sigma / std_c``, and

        D' = c_skip x' + c_out F(c_in x', c_noise),     D = m + std D',

    with ``c_skip = sd^2 / (sigma_c^2 + sd^2)``, ``c_out = sigma_c sd / sqrt(sigma_c^2 + sd^2)``,
    ``c_in = 1 / sqrt(sigma_c^2 + sd^2)``, ``c_noise = log(sigma) / 4`` and
    ``sd = sigma_data`` (Karras et al. 2022, Table 1).

    Parameters
    ----------
    network : FNO
        The network ``F``.
    process : VPProcess
        The forward process.
    noise : GaussianMeasure
        The noise measure ``N(0, C)`` of ``xi``. It should have unit
        pointwise variance (``Matern.unit_variance``), because the
        coefficients above assume ``xi`` has variance 1 at every point.
    sigma_data : float
        ``sd``, the standard deviation of the standardised data (default 1).
    data_mean, data_std : float or sequence of float
        Per-channel mean ``m`` and standard deviation ``std`` of the
        training data (physical units).
    channels : int
        Number of channels ``C``.
    lengths : tuple of float, optional
        The domain the network was trained on; :meth:`denoise` then refuses
        grids of another domain (any resolution of it is fine).
    tail_variance : sequence of float, optional
        The Gaussian tail: per-mode variance ``q(n)`` of the data anomalies
        in each wavenumber shell ``n = round(|k| L_max / 2 pi)``
        (:func:`shell_variance`), one row per channel. When given,
        :meth:`denoise` keeps the network's output on the modes it
        represents spectrally (``|m_i| < modes_i``) and uses, on every other
        mode, the exact denoiser of Gaussian data with that variance,
        ``D_hat = a q / (a^2 q + s^2 c) u_hat`` (``c`` the noise
        eigenvalue; ``q = 0`` beyond the table). Above its kept modes an FNO
        acts only pointwise, and its GELU nonlinearities leave there a broad
        residual that a smooth field's spectrum (falling by many decades)
        cannot hide; the tail makes those modes Gaussian with the data's
        spectrum instead.
    mean_field : MeanField, optional
        The non-constant part ``mu(x)`` of the data's mean
        (:class:`~sciffd.models.mean.MeanField`). The mean subtracted
        before the network is then ``m + mu(x)``, evaluated on each grid,
        and ``data_std`` is the standard deviation about it. A forced flow
        has a mean with a fixed phase, which translation-equivariant layers
        driven by stationary noise cannot produce.
    skip : {"edm", "gaussian"}
        The skip connection ``S(x')`` in ``D' = S(x') + c_out F``:
        ``"edm"`` is ``c_skip x'``; ``"gaussian"`` is, mode by mode, the
        exact denoiser of Gaussian anomalies with the shell spectrum
        ``tail_variance``, ``q / (q + sigma^2 c)`` (:meth:`skip_term`). With
        it an untrained network (``F = 0``) is already the Gaussian model
        with the data's mean and spectrum, and the network learns only the
        departure from it; ``c_out`` and ``c_in`` stay those of EDM.
    tail : bool
        Apply the Gaussian tail when ``tail_variance`` is given (default).
    output : {"scalar", "spectral"}
        How the network's output enters (:meth:`output_term`): ``"scalar"``
        is EDM's ``c_out F``; ``"spectral"`` scales each mode by the
        posterior standard deviation of the Gaussian with the data's shell
        spectrum, so that the network's target is white on its band at every
        noise level. With a steep spectrum the scalar ``c_out`` gives a weak
        shell the same output scale as the strongest one, and whatever the
        network leaves there (its nonlinearities spread the strong shells'
        content over the band) is large against that shell's posterior
        spread; the spectral scaling makes such a residual as small there,
        relative to the shell, as anywhere else.

    Examples
    --------
    >>> from sciffd.grids import torus
    >>> from sciffd.sde import VPProcess
    >>> net = FNO(1, width=8, layers=1, modes=4)
    >>> model = FNODenoiser(net, VPProcess(), default_noise(torus(16)))
    >>> model.denoise(torch.zeros(2, 1, 16, 16), 0.5, torus(16)).shape
    torch.Size([2, 1, 16, 16])
    """

    def __init__(
        self,
        network: FNO,
        process: VPProcess,
        noise: GaussianMeasure,
        sigma_data: float = 1.0,
        data_mean: float | Sequence[float] = 0.0,
        data_std: float | Sequence[float] = 1.0,
        channels: int = 1,
        lengths: Sequence[float] | None = None,
        tail_variance: Sequence[Sequence[float]] | None = None,
        mean_field: MeanField | None = None,
        skip: str = "edm",
        tail: bool = True,
        output: str = "scalar",
    ) -> None:
        if not isinstance(network, FNO):
            raise TypeError(
                f"network must be a sciffd.models.fno.FNO, got {type(network).__name__}"
            )
        self.channels = _positive_int(channels, "channels")
        if network.in_channels != self.channels or network.out_channels != self.channels:
            raise ValueError(
                f"network maps {network.in_channels} -> {network.out_channels} channels; "
                f"a denoiser of {self.channels} channel(s) needs {self.channels} -> "
                f"{self.channels}"
            )
        self.network = network
        self.process = check_process(process)
        self.noise = check_noise(noise)
        if isinstance(sigma_data, bool) or not isinstance(sigma_data, (int, float)) \
                or not (math.isfinite(sigma_data) and sigma_data > 0):
            raise ValueError(f"sigma_data={sigma_data!r} must be a positive number")
        self.sigma_data = float(sigma_data)
        self.data_mean = _per_channel(data_mean, self.channels, "data_mean")
        self.data_std = _per_channel(data_std, self.channels, "data_std")
        if min(self.data_std) <= 0:
            raise ValueError(f"data_std={data_std!r} must be positive")
        self.lengths = None if lengths is None else tuple(float(L) for L in lengths)
        self.tail_variance = None
        if tail_variance is not None:
            q = np.asarray(tail_variance, dtype=np.float64)
            if q.ndim == 1:
                q = q[None, :]
            if q.ndim != 2 or q.shape[0] != self.channels or q.shape[1] < 1 \
                    or not np.all(np.isfinite(q)) or np.any(q < 0):
                raise ValueError(
                    f"tail_variance must hold {self.channels} row(s) of finite non-negative "
                    f"per-shell variances, got shape {q.shape}"
                )
            self.tail_variance = q
            weak = (q < TAIL_DYNAMIC_RANGE * q.max(axis=1, keepdims=True)).all(axis=0)
            weak[0] = False
            self.tail_start = int(np.argmax(weak)) if weak.any() else q.shape[1]
        if mean_field is not None:
            if not isinstance(mean_field, MeanField):
                raise TypeError(f"mean_field must be a sciffd.models.mean.MeanField, got "
                                f"{type(mean_field).__name__}")
            if mean_field.channels != self.channels or mean_field.ndim != network.ndim:
                raise ValueError(
                    f"mean_field has {mean_field.channels} channel(s) in {mean_field.ndim} "
                    f"dimension(s); the denoiser has {self.channels} in {network.ndim}"
                )
            if self.lengths is not None and not np.allclose(mean_field.lengths, self.lengths,
                                                            rtol=1e-9):
                raise ValueError(f"mean_field lives on lengths {mean_field.lengths}, the "
                                 f"model on {self.lengths}")
            if self.lengths is None:
                self.lengths = mean_field.lengths
        self.mean_field = mean_field
        self._mean_cache: dict = {}
        if skip not in SKIPS:
            raise ValueError(f"skip={skip!r} is not supported; expected one of {SKIPS}")
        if skip == "gaussian" and (self.tail_variance is None or self.lengths is None):
            raise ValueError("skip='gaussian' needs tail_variance (the data's shell spectrum) "
                             "and lengths (the domain)")
        if not isinstance(tail, bool):
            raise TypeError(f"tail={tail!r} must be True or False")
        if output not in OUTPUTS:
            raise ValueError(f"output={output!r} is not supported; expected one of {OUTPUTS}")
        if output == "spectral" and (self.tail_variance is None or self.lengths is None):
            raise ValueError("output='spectral' needs tail_variance (the data's shell "
                             "spectrum) and lengths (the domain)")
        self.skip = skip
        self.output = output
        self.tail = tail and self.tail_variance is not None
        self._table_cache: dict = {}
        self._band_modes = None if self.tail_variance is None or self.lengths is None \
            else _band_count(self.lengths, network.modes, self.tail_start)
        self.backend = "torch"

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.network.parameters()).dtype

    def to(self, device: Any) -> FNODenoiser:
        """Move the network to ``device`` (in place); returns ``self``."""
        self.network.to(device)
        return self

    def _grid_of(self, shape: Sequence[int]) -> TorusGrid:
        return TorusGrid(tuple(shape), self.lengths)

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, self.channels) + (1,) * (like.ndim - 2)
        m = torch.tensor(self.data_mean, dtype=like.dtype, device=like.device).reshape(shape)
        s = torch.tensor(self.data_std, dtype=like.dtype, device=like.device).reshape(shape)
        if self.mean_field is not None:
            key = (tuple(like.shape[2:]), like.dtype, like.device)
            field = self._mean_cache.get(key)
            if field is None:
                values = self.mean_field.evaluate(self._grid_of(like.shape[2:]))
                field = torch.as_tensor(values[None], dtype=like.dtype, device=like.device)
                self._mean_cache = {key: field}
            m = m + field
        return m, s

    def coefficients(self, sigma: torch.Tensor, ndim: int) -> tuple[torch.Tensor, ...]:
        """``(c_skip, c_out, c_in, c_noise)`` for physical noise levels ``sigma`` (B,).

        ``c_skip, c_out, c_in`` have shape ``(B, C, 1, ..)`` (one per channel,
        broadcastable over ``ndim`` spatial axes); ``c_noise`` has shape ``(B,)``.
        """
        B = sigma.shape[0]
        std = torch.tensor(self.data_std, dtype=sigma.dtype, device=sigma.device)
        sig = sigma.reshape(B, 1) / std
        sig = sig.reshape((B, self.channels) + (1,) * ndim)
        sd2 = self.sigma_data**2
        norm = torch.sqrt(sig**2 + sd2)
        return sd2 / norm**2, sig * self.sigma_data / norm, 1.0 / norm, torch.log(sigma) / 4

    def standardize(self, u: torch.Tensor) -> torch.Tensor:
        """``(u - m) / std`` per channel."""
        m, s = self._stats(u)
        return (u - m) / s

    def _tables(self, grid: TorusGrid, device: torch.device) -> dict:
        """Per-grid constants of the Gaussian skip and tail, built once per grid.

        ``q`` (the shell spectrum per mode, C x K), ``c`` (noise eigenvalues),
        ``band`` (the modes the network keeps) and ``mu_hat`` (the mean
        field's half spectrum, or None).
        """
        key = (grid.shape, grid.lengths, device)
        if self._table_cache.get("key") != key:
            self._table_cache = {
                "key": key,
                "q": torch.as_tensor(_tail_eigenvalues(self.tail_variance, grid),
                                     device=device),
                "c": torch.as_tensor(self.noise.eigenvalues(grid), dtype=torch.float64,
                                     device=device),
                "band": torch.as_tensor(_band_mask(grid, self.network.modes)
                                        & (_shells(grid) < self.tail_start), device=device),
                "mu_hat": None if self.mean_field is None else
                torch.as_tensor(self.mean_field.spectrum(grid), device=device),
            }
        return self._table_cache

    def skip_term(self, xs: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The skip connection for standardised ``xs`` at physical noise levels ``sigma`` (B,).

        ``"edm"``: ``c_skip xs``. ``"gaussian"``: per mode, the exact
        denoiser of Gaussian anomalies with the data's shell spectrum ``q``,
        ``q / (q + sigma^2 c) xs_hat`` (``c`` the noise eigenvalue; the
        ratio is the same in standardised and physical units).
        """
        d = xs.ndim - 2
        if self.skip == "edm":
            return self.coefficients(sigma, d)[0] * xs
        q, _, den = self._gaussian_terms(self._grid_of(xs.shape[2:]), xs.device, sigma)
        gain = torch.where(den > 0, q / torch.where(den > 0, den, 1.0), 0.0)
        return _per_mode(xs, gain)

    def output_term(self, out: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The network's share ``O(F)`` of ``D' = S(x') + O(F)`` at noise levels ``sigma`` (B,).

        ``"scalar"``: ``c_out F``. ``"spectral"``: mode by mode,
        ``sqrt(n_band v) / std F_hat`` with ``v = q sigma^2 c / (q + sigma^2 c)``
        the posterior variance of the Gaussian with the data's shell
        spectrum ``q`` (``c`` the noise eigenvalue) and ``n_band`` the
        number of modes the network keeps: the network's target is then
        white on its band, with unit pointwise variance, at every noise level.
        """
        d = out.ndim - 2
        if self.output == "scalar":
            return self.coefficients(sigma, d)[1] * out
        v = self._posterior(self._grid_of(out.shape[2:]), out.device, sigma)
        std = torch.tensor(self.data_std, dtype=torch.float64,
                           device=out.device).reshape((1, -1) + (1,) * d)
        return _per_mode(out, torch.sqrt(self._band_modes * v) / std)

    def _gaussian_terms(self, grid: TorusGrid, device: Any, sigma: torch.Tensor) -> tuple:
        """``q``, ``sigma^2 c`` and ``q + sigma^2 c`` per mode, ``(B, C, *K)``."""
        tables = self._tables(grid, device)
        sig2 = (sigma.to(torch.float64) ** 2).reshape((-1,) + (1,) * (grid.ndim + 1))
        noise = sig2 * tables["c"]
        return tables["q"], noise, tables["q"] + noise

    def _posterior(self, grid: TorusGrid, device: Any, sigma: torch.Tensor) -> torch.Tensor:
        """``q sigma^2 c / (q + sigma^2 c)`` per mode: the Gaussian reference's posterior
        variance at the noise levels ``sigma`` (B,)."""
        q, noise, den = self._gaussian_terms(grid, device, sigma)
        return torch.where(den > 0, q * noise / torch.where(den > 0, den, 1.0), 0.0)

    def denoise_rescaled(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``D`` for ``x = u_t / a(t)`` (physical units) at noise levels ``sigma`` (B,)."""
        d = x.ndim - 2
        _, _, c_in, c_noise = self.coefficients(sigma, d)
        xs = self.standardize(x)
        ds = self.skip_term(xs, sigma) + self.output_term(self.network(c_in * xs, c_noise),
                                                          sigma)
        m, s = self._stats(x)
        return m + s * ds

    def posterior_variance(self, t: float, grid: TorusGrid) -> np.ndarray:
        """Per-mode posterior variance ``q s^2 c / (a^2 q + s^2 c)`` of the Gaussian with
        the data's shell spectrum ``q`` (``tail_variance``), shape ``(C, *K)``.

        This is the spread the Gaussian skip leaves about its mean; the sampler's
        ``sigma_stop`` draws the last stretch of the reverse process from it.
        """
        if self.tail_variance is None:
            raise ValueError("posterior_variance needs the data's shell spectrum "
                             "(a model trained with gaussian_tail or skip='gaussian')")
        if not isinstance(grid, TorusGrid):
            raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
        # the same ratio in terms of sigma = s / a
        sigma = torch.tensor([float(self.process.sigma(float(t)))], dtype=torch.float64)
        return self._posterior(grid, torch.device("cpu"), sigma)[0].numpy()

    def _check_input(self, u: Any, t: Any, grid: TorusGrid) -> tuple[torch.Tensor, ...]:
        if not isinstance(grid, TorusGrid):
            raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
        if grid.ndim != self.network.ndim:
            raise ValueError(
                f"grid {grid} has {grid.ndim} dimension(s); the network works on "
                f"{self.network.ndim}-dimensional grids"
            )
        if self.lengths is not None and not np.allclose(grid.lengths, self.lengths,
                                                        rtol=1e-9):
            raise ValueError(
                f"grid {grid} has lengths {grid.lengths}; the model was trained on the "
                f"domain with lengths {self.lengths} (any resolution of it works)"
            )
        if not isinstance(u, torch.Tensor):
            raise TypeError(
                f"u must be a torch.Tensor (the model's backend is 'torch'), got "
                f"{type(u).__name__}; convert with sciffd.backend.to_backend(u, 'torch')"
            )
        expected = (self.channels,) + grid.shape
        if u.ndim != grid.ndim + 2 or tuple(u.shape[1:]) != expected:
            raise ValueError(f"u has shape {tuple(u.shape)}; expected "
                             f"(B, {', '.join(map(str, expected))})")
        B = u.shape[0]
        if isinstance(t, (int, float, np.floating, np.integer)) and not isinstance(t, bool):
            tt = torch.full((B,), float(t), dtype=torch.float64, device=u.device)
        elif isinstance(t, (torch.Tensor, np.ndarray)):
            tt = torch.as_tensor(t, device=u.device).to(torch.float64).reshape(-1)
            if tt.numel() == 1:
                tt = tt.expand(B)
            if tt.shape != (B,):
                raise ValueError(f"t has shape {tuple(t.shape)}; expected a float or ({B},)")
        else:
            raise TypeError(f"t must be a float or an array of shape (B,), got {t!r}")
        lo, hi = 0.0, self.process.t_max
        if not bool(((tt > lo) & (tt <= hi)).all()):
            raise ValueError(f"t={t!r} must lie in (0, t_max={hi}]")
        return u, tt

    def denoise(self, u: Any, t: Any, grid: TorusGrid) -> torch.Tensor:
        """``E[u_0 | u_t = u]`` for ``u`` of shape ``(B, C, *S)`` (torch) and ``t`` float or (B,).

        Returns a tensor of the dtype of ``u``. Gradients flow to ``u`` and
        to the network weights (no ``no_grad`` inside).
        """
        u, tt = self._check_input(u, t, grid)
        d = grid.ndim
        a = self.process.a(tt).to(self.dtype).reshape((-1, 1) + (1,) * d)
        sigma = self.process.sigma(tt).to(self.dtype)
        x = u.to(device=self.device, dtype=self.dtype) / a
        out = self.denoise_rescaled(x, sigma)
        if self.tail:
            out = self._with_tail(out, u.to(device=self.device, dtype=self.dtype), tt, grid)
        return out.to(u.dtype)

    def _with_tail(self, denoised: torch.Tensor, u: torch.Tensor, tt: torch.Tensor,
                   grid: TorusGrid) -> torch.Tensor:
        """Replace the modes outside the network's band by the Gaussian-tail denoiser."""
        d = grid.ndim
        dims = tuple(range(-d, 0))
        tables = self._tables(grid, u.device)
        band, q_t, c_t = tables["band"], tables["q"], tables["c"]
        a = self.process.a(tt).reshape((-1,) + (1,) * (d + 1))
        s = self.process.s(tt).reshape((-1,) + (1,) * (d + 1))
        den = a**2 * q_t + s**2 * c_t
        gain = torch.where(den > 0, a * q_t / torch.where(den > 0, den, 1.0), 0.0)
        u_hat = torch.fft.rfftn(u, dim=dims, norm="forward")
        d_hat = torch.fft.rfftn(denoised, dim=dims, norm="forward")
        gain = gain.to(u_hat.real.dtype)
        if self.mean_field is None:
            tail = gain * u_hat
        else:
            # Gaussian data N(mu, q): D_hat = mu_hat + gain (u_hat - a mu_hat)
            mu = tables["mu_hat"].to(u_hat.dtype)[None]
            tail = mu + gain * (u_hat - a.to(u_hat.real.dtype) * mu)
        mixed = torch.where(band, d_hat, tail)
        return torch.fft.irfftn(mixed, s=grid.shape, dim=dims, norm="forward")

    def config(self) -> dict:
        from ..noise import measure_to_config

        return {"model": "FNODenoiser", "network": self.network.options(),
                "sigma_data": self.sigma_data, "data_mean": list(self.data_mean),
                "data_std": list(self.data_std), "channels": self.channels,
                "lengths": None if self.lengths is None else list(self.lengths),
                "noise": measure_to_config(self.noise),
                "tail_variance": None if self.tail_variance is None
                else self.tail_variance.tolist(),
                "mean_field": None if self.mean_field is None else self.mean_field.to_config(),
                "skip": self.skip, "tail": self.tail, "output": self.output,
                **self.process.to_config()}


#: the skip connections of :class:`FNODenoiser`
SKIPS = ("edm", "gaussian")

#: the output scalings of :class:`FNODenoiser`
OUTPUTS = ("scalar", "spectral")

#: shells whose per-mode variance is below this fraction of the largest go to the tail
TAIL_DYNAMIC_RANGE = 1e-4


def _band_mask(grid: TorusGrid, modes: Sequence[int]) -> np.ndarray:
    """Half-spectrum mask of the modes ``|m_i| < modes_i`` an FNO mixes spectrally."""
    mask = np.ones(grid.spectral_shape, dtype=bool)
    for i, k in enumerate(modes):
        m = np.abs(grid.mode_indices(i))
        shape = [1] * grid.ndim
        shape[i] = m.size
        mask &= (m < k).reshape(shape)
    return mask & grid.nyquist_mask


def _per_mode(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``x`` with each Fourier mode multiplied by ``factor`` (half spectrum, broadcast)."""
    d = x.ndim - 2
    shape = tuple(x.shape[2:])
    dims = tuple(range(-d, 0))
    x_hat = torch.fft.rfftn(x, dim=dims, norm="forward")
    return torch.fft.irfftn(factor.to(x_hat.real.dtype) * x_hat, s=shape, dim=dims,
                            norm="forward")


def _band_count(lengths: Sequence[float], modes: Sequence[int], tail_start: int) -> float:
    """Number of Fourier modes (both halves) the network keeps below the tail, on any
    grid that resolves them."""
    grid = TorusGrid(tuple(2 * int(k) + 2 for k in modes), tuple(lengths))
    keep = _band_mask(grid, modes) & (_shells(grid) < tail_start)
    return float((grid.hermitian_weight * keep).sum())


def _shells(grid: TorusGrid) -> np.ndarray:
    """The shell ``n = round(|k| L_max / 2 pi)`` of each half-spectrum entry."""
    kappa = np.sqrt(grid.k_squared) * max(grid.lengths) / (2 * np.pi)
    return np.floor(kappa + 0.5).astype(np.int64)


def _tail_eigenvalues(table: np.ndarray, grid: TorusGrid) -> np.ndarray:
    """Per-mode variance ``q`` on ``grid`` from per-shell tables (C, n_shells) -> (C, *K)."""
    shells = _shells(grid)
    inside = shells < table.shape[1]
    q = np.zeros((table.shape[0],) + grid.spectral_shape)
    q[:, inside] = table[:, shells[inside]]
    q[:, ~grid.nyquist_mask] = 0.0
    return q


def shell_variance(fields: np.ndarray, grid: TorusGrid) -> np.ndarray:
    """Per-mode variance of the anomalies of ``fields`` in each wavenumber shell.

    Parameters
    ----------
    fields : array, shape ``(N, C, *S)``

    Returns
    -------
    q : array, shape ``(C, n_shells)``
        ``q[c, n]``: the mean over the modes of shell
        ``n = round(|k| L_max / 2 pi)`` of ``E|u_hat[m] - mean|^2``.
    """
    u = np.asarray(fields, dtype=np.float64)
    if u.ndim != grid.ndim + 2 or u.shape[2:] != grid.shape or u.shape[0] < 2:
        raise ValueError(f"fields has shape {u.shape}; expected (N >= 2, C, *{grid.shape})")
    axes = tuple(range(-grid.ndim, 0))
    power = np.zeros((u.shape[1],) + grid.spectral_shape)
    mean = u.mean(axis=0)
    for start in range(0, u.shape[0], 256):
        chunk = np.fft.rfftn(u[start:start + 256] - mean, axes=axes, norm="forward")
        power += (np.abs(chunk) ** 2).sum(axis=0)
    power /= u.shape[0]
    kappa = np.sqrt(grid.k_squared) * max(grid.lengths) / (2 * np.pi)
    shells = np.floor(kappa + 0.5).astype(np.int64).reshape(-1)
    weight = (grid.hermitian_weight * grid.nyquist_mask).reshape(-1)
    count = np.bincount(shells, weights=weight)
    out = np.stack([np.bincount(shells, weights=weight * p.reshape(-1)) for p in power])
    return np.where(count > 0, out / np.where(count > 0, count, 1.0), 0.0)
