"""The Gaussian posterior step (``sigma_stop``) against the exact Gaussian model.

For Gaussian data ``N(0, Q)`` the posterior of ``u_0`` given ``u_t`` is
exactly ``N(D(u_t), V)`` with ``V = q s^2 c / (a^2 q + s^2 c)`` per mode, so
a field drawn from the marginal of ``u_t`` and then from that posterior is a
draw of ``N(0, Q)``, whatever ``t``. A sampler stopped at ``sigma_stop`` is,
per mode, the linear map of its draws written out below (the reference of
``tests/test_sampling.py``), followed by the gain ``a q / m`` and the added
spread ``sqrt(V / c) xi``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from test_sampling import DATA, NOISE, eigen, heun_amplification_over, marginal, shell_statistics

from sciffd.grids import torus
from sciffd.models import GaussianScore
from sciffd.sampling import EulerMaruyama, Heun, gaussian_posterior_step, sample, time_steps
from sciffd.sde import VPProcess
from sciffd.spectral import forward, inverse


@pytest.fixture(scope="module")
def model() -> GaussianScore:
    return GaussianScore(DATA, NOISE)


def stop_times(process, steps: int, sigma_stop: float) -> np.ndarray:
    """EDM times (rho = 7) from t_max down to the time of ``sigma_stop``, from the formula."""
    lo, hi = sigma_stop ** (1 / 7), float(process.sigma(process.t_max)) ** (1 / 7)
    sigma = np.array([(hi + n / steps * (lo - hi)) ** 7 for n in range(steps + 1)])
    t = process.time_of_sigma(sigma)
    t[0], t[-1] = process.t_max, process.time_of_sigma(sigma_stop)
    return t


def _chi2_ok(u, v, grid) -> None:
    chi2, dof = shell_statistics(forward(u, grid), v, grid)
    alpha = 1e-3 / len(dof)
    lo, hi = stats.chi2.ppf(alpha / 2, dof), stats.chi2.ppf(1 - alpha / 2, dof)
    bad = np.nonzero((chi2 < lo) | (chi2 > hi))[0]
    assert bad.size == 0, (bad, chi2[bad] / dof[bad])


def test_time_steps_end_at_t_end(model):
    process = model.process
    t_end = float(process.time_of_sigma(0.4))
    t = time_steps(process, 10, t_end=t_end)
    np.testing.assert_allclose(t, stop_times(process, 10, 0.4), rtol=1e-12)
    assert t[-1] == t_end
    u = time_steps(process, 4, spacing="uniform", t_end=0.5)
    np.testing.assert_allclose(u, np.linspace(process.t_max, 0.5, 5))
    with pytest.raises(ValueError, match=r"t_end=1.5 must lie in"):
        time_steps(process, 4, t_end=1.5)


@pytest.mark.parametrize("sigma", [0.2, 1.5, 20.0])
def test_posterior_step_from_the_exact_marginal_is_a_draw_of_the_data(model, sigma):
    """``u_t ~ N(0, a^2 Q + s^2 C)`` exactly (coloured white noise), then the step: the
    output's per-mode variance is ``q`` (chi-square per shell, Bonferroni 1e-3)."""
    grid = torus(32)
    process = model.process
    t = float(process.time_of_sigma(sigma))
    q, c = eigen(grid, flat=False)
    m = marginal(process, t, q, c)
    rng = np.random.default_rng(int(10 * sigma))
    members = 200
    white = rng.standard_normal((members, 1) + grid.shape)
    u_t = inverse(forward(white, grid) * np.sqrt(m * grid.size), grid)
    xi = NOISE.sample(grid, members, seed=5, stream=9, dtype=np.float64)
    out = gaussian_posterior_step(model, grid, u_t, t, xi)
    _chi2_ok(out, np.where(grid.nyquist_mask, DATA.eigenvalues(grid), 1.0), grid)
    # its variance given u_t is V: the spread added is independent of D(u_t)
    keep = grid.nyquist_mask
    np.testing.assert_allclose(model.posterior_variance(t, grid)[keep],
                               (q * float(process.s(t)) ** 2 * c / m)[keep], rtol=1e-12)


@pytest.mark.parametrize("sampler", [Heun(steps=6, sigma_stop=0.4),
                                     EulerMaruyama(steps=12, sigma_stop=0.4)],
                         ids=["heun", "euler-maruyama"])
def test_stopped_samplers_are_the_exact_linear_maps_of_their_draws(model, sampler):
    grid = torus(16)
    process, ids, seed = model.process, [0, 5], 3
    q, c = eigen(grid, flat=False)
    s_T = float(process.s(process.t_max))
    t = stop_times(process, sampler.steps, 0.4)
    t_stop = t[-1]

    def draw(stream):
        return NOISE.sample_spectrum(grid, ids, seed, stream=stream, dtype=np.float64)

    x = s_T * draw(0)
    if isinstance(sampler, Heun):
        x = heun_amplification_over(t, process, q, c) * x
    else:
        for n in range(sampler.steps):
            h, beta = t[n] - t[n + 1], float(process.beta(t[n]))
            g = 1 + h * beta * (0.5 - c / marginal(process, t[n], q, c))
            x = g * x + np.sqrt(h * beta) * draw(n + 1)
    m = marginal(process, t_stop, q, c)
    gain = float(process.a(t_stop)) * q / m
    spread = np.sqrt(q * float(process.s(t_stop)) ** 2 / m)  # sqrt(V / c)
    expected = gain * x + spread * draw(sampler.steps + 1)
    u = sample(model, grid, ids, seed, sampler, dtype=np.float64, progress=False)
    np.testing.assert_allclose(forward(u, grid), expected, rtol=0, atol=1e-13)


def test_stopped_sampler_targets_the_data_at_two_resolutions(model):
    """Heun stopped at sigma = 0.5: the per-shell variance is the exact discrete
    variance (the ODE's amplification to t_stop, the gain, plus V), which is within
    1% of ``q`` (the start field's missing ``a(T)^2 q``, at most 4.1e-3 here, see
    test_sampling, plus the discretisation of 64 steps); one model object at 32^2 and
    128^2."""
    sampler = Heun(steps=64, sigma_stop=0.5)
    process = model.process
    t = stop_times(process, sampler.steps, 0.5)
    for resolution, members in ((32, 64), (128, 24)):
        grid = torus(resolution)
        q, c = eigen(grid, flat=False)
        m = marginal(process, t[-1], q, c)
        s_T = float(process.s(process.t_max))
        v_stop = heun_amplification_over(t, process, q, c) ** 2 * s_T**2 * c
        v = (float(process.a(t[-1])) * q / m) ** 2 * v_stop + q * float(process.s(t[-1])) ** 2 \
            * c / m
        qq = eigen(grid)[0]
        assert np.abs(v[grid.nyquist_mask] / qq - 1).max() < 0.01
        u = sample(model, grid, members=members, seed=4, sampler=sampler, dtype=np.float64,
                   progress=False)
        _chi2_ok(u, v, grid)


def test_the_fno_reference_is_the_gaussian_posterior():
    torch = pytest.importorskip("torch")
    from sciffd.models.fno import FNO, FNODenoiser, _tail_eigenvalues
    from sciffd.noise import Matern

    table = np.array([0.0, 1.0, 0.2, 3e-2, 4e-3, 5e-4])
    noise = Matern.unit_variance(3.0, 8.0, 2)
    net = FNO(1, width=4, layers=1, modes=4).to(torch.float64)
    model = FNODenoiser(net, VPProcess(), noise, lengths=(1.0, 1.0),
                        tail_variance=table[None], skip="gaussian")
    grid = torus((16, 20))
    q = _tail_eigenvalues(table[None], grid)
    c = noise.eigenvalues(grid)
    for t in (0.05, 0.6):
        a, s = float(model.process.a(t)), float(model.process.s(t))
        den = a * a * q + s * s * c
        want = np.where(den > 0, q * s * s * c / np.where(den > 0, den, 1.0), 0.0)
        np.testing.assert_allclose(model.posterior_variance(t, grid), want, rtol=1e-12)
    plain = FNODenoiser(net, VPProcess(), noise)
    with pytest.raises(ValueError, match="posterior_variance needs the data's shell"):
        plain.posterior_variance(0.5, grid)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Heun(sigma_stop=0.0), r"sigma_stop=0.0 must be None or a positive"),
        (lambda: Heun(sigma_stop=-1), r"sigma_stop=-1 must be None or a positive"),
        (lambda: EulerMaruyama(sigma_stop=float("nan")), r"sigma_stop=nan"),
        (lambda: Heun(sigma_stop=True), r"sigma_stop=True"),
        (lambda: Heun(sigma_stop=0.3, denoise_final=False), r"denoise_final=False"),
    ],
)
def test_bad_sigma_stop_is_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_sigma_stop_outside_the_process_is_refused(model):
    with pytest.raises(ValueError, match=r"sigma_stop=1000.0 must lie between"):
        sample(model, torus(8), members=1, sampler=Heun(steps=2, sigma_stop=1e3),
               progress=False)


def test_a_model_without_a_gaussian_reference_is_refused():
    from sciffd.models.base import ScoreModel

    class Plain(ScoreModel):
        def __init__(self):
            self.process, self.noise = VPProcess(), NOISE

        def denoise(self, u, t, grid):
            return 0 * u

    with pytest.raises(ValueError, match=r"sigma_stop needs a model with a Gaussian reference"):
        sample(Plain(), torus(8), members=1, sampler=Heun(steps=2, sigma_stop=0.5),
               progress=False)
