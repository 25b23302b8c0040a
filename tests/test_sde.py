"""Tests of sciffd.sde: the VP process with linear and cosine schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate

from sciffd.sde import CosineSchedule, LinearSchedule, VPProcess

EPS = np.finfo(np.float64).eps
PROCESSES = {
    "linear": VPProcess(),
    "linear-narrow": VPProcess(LinearSchedule(beta_min=0.5, beta_max=5.0), t_min=1e-4),
    "cosine": VPProcess(CosineSchedule()),
    "cosine-s0": VPProcess(CosineSchedule(s=0.0, t_max=0.95), t_min=1e-2),
}


@pytest.fixture(params=sorted(PROCESSES))
def process(request):
    return PROCESSES[request.param]


def _times(process, n=201):
    return np.linspace(process.t_min, process.t_max, n)


def test_variance_preserving(process):
    t = _times(process)
    a, s = process.a(t), process.s(t)
    np.testing.assert_allclose(a**2 + s**2, 1.0, rtol=0, atol=4 * EPS)
    assert np.all(np.diff(a) < 0) and np.all(a > 0) and np.all(s > 0)
    np.testing.assert_allclose(process.sigma(t), s / a, rtol=1e-13)
    # python floats give the same numbers
    for i in range(0, t.size, 50):
        assert float(process.a(float(t[i]))) == pytest.approx(a[i], rel=1e-15)
        assert float(process.s(float(t[i]))) == pytest.approx(s[i], rel=1e-15)
        assert float(process.sigma(float(t[i]))) == pytest.approx(s[i] / a[i], rel=1e-13)


def _third_derivative_bound(process):
    """``max |d^3 log a / dt^3|`` on ``[0, t_max]``, in closed form."""
    sch = process.schedule
    if isinstance(sch, LinearSchedule):
        return 0.0  # log a is quadratic in t
    # log a = log cos(phi) + const, phi = c (t + s), c = pi / (2 (1 + s)):
    # d^3/dt^3 = -2 c^3 sec(phi)^2 tan(phi), increasing in t
    c = math.pi / (2 * (1 + sch.s))
    phi = c * (sch.t_max + sch.s)
    return 2 * c**3 * math.tan(phi) / math.cos(phi) ** 2


def test_beta_is_minus_twice_the_log_derivative_of_a(process):
    t = _times(process)
    h = 1e-5
    t = np.clip(t, h, process.t_max - h)
    log_a = lambda x: np.log(process.a(x))  # noqa: E731
    fd = -2 * (log_a(t + h) - log_a(t - h)) / (2 * h)
    # central difference error: h^2 / 6 max|f'''| (truncation) plus about
    # 2 eps max|f| / (2 h) from rounding f, both doubled by the factor -2,
    # and a factor 2 of slack
    f_max = abs(float(log_a(process.t_max)))
    tol = 2 * 2 * (h**2 / 6 * _third_derivative_bound(process) + 2 * EPS * (f_max + 1) / h)
    np.testing.assert_allclose(fd, process.beta(t), rtol=0, atol=tol)


def test_linear_schedule_closed_form():
    p = VPProcess(LinearSchedule(beta_min=0.1, beta_max=20.0))
    for t in (0.0, 0.1, 0.5, 1.0):
        # a = exp(-1/2 int_0^t beta), integrated numerically
        integral, _ = integrate.quad(lambda x: 0.1 + x * 19.9, 0.0, t)
        assert float(p.a(t)) == pytest.approx(math.exp(-0.5 * integral), rel=1e-13)
    assert p.t_max == 1.0


def test_cosine_schedule_closed_form():
    s = 0.008
    p = VPProcess(CosineSchedule(s=s))
    for t in (0.0, 0.2, 0.7, 0.98):
        expected = math.cos(math.pi / 2 * (t + s) / (1 + s)) / math.cos(math.pi / 2 * s / (1 + s))
        assert float(p.a(t)) == pytest.approx(expected, rel=1e-13)
    # the default end time keeps a^2 near 1e-3, as documented
    assert float(p.a(p.t_max)) ** 2 == pytest.approx(1e-3, rel=0.05)


def test_time_of_sigma_inverts_sigma(process):
    t = _times(process)
    sigma = process.sigma(t)
    # t -> sigma is smooth and strictly increasing; the inversion loses at
    # most a few eps relative to sigma times |dt/dsigma|, well below 1e-9
    np.testing.assert_allclose(process.time_of_sigma(sigma), t, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(process.sigma(process.time_of_sigma(sigma)), sigma, rtol=1e-9)
    assert float(process.time_of_sigma(float(sigma[7]))) == pytest.approx(t[7], rel=1e-9)


@pytest.mark.property
@given(st.sampled_from(sorted(PROCESSES)), st.floats(0.0, 1.0))
def test_time_of_sigma_round_trip_anywhere(name, fraction):
    p = PROCESSES[name]
    t = p.t_min + fraction * (p.t_max - p.t_min)
    assert float(p.time_of_sigma(p.sigma(t))) == pytest.approx(t, rel=1e-9, abs=1e-12)


def test_torch_and_numpy_agree(process):
    torch = pytest.importorskip("torch")
    t = _times(process, 33)
    tt = torch.from_numpy(t)
    for name in ("a", "s", "sigma", "beta"):
        out = getattr(process, name)(tt)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float64, name
        np.testing.assert_allclose(out.numpy(), getattr(process, name)(t), rtol=1e-14)
    sigma = torch.from_numpy(process.sigma(t))
    back = process.time_of_sigma(sigma)
    assert isinstance(back, torch.Tensor)
    np.testing.assert_allclose(back.numpy(), process.time_of_sigma(process.sigma(t)),
                               rtol=1e-13, atol=1e-15)
    # float32 tensors stay float32
    assert process.a(tt.float()).dtype == torch.float32


def test_marginal(process, rng):
    u0, xi = rng.standard_normal((2, 3, 1, 4, 4))
    t = 0.3
    np.testing.assert_allclose(process.marginal(u0, t, xi),
                               process.a(t) * u0 + process.s(t) * xi, rtol=1e-15)


def test_config_round_trip(process):
    import json

    cfg = json.loads(json.dumps(process.to_config()))
    assert cfg["process"] == "vp"
    assert VPProcess.from_config(cfg) == process


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: LinearSchedule(beta_min=20.0, beta_max=0.1), ValueError,
         "0 < beta_min < beta_max, got beta_min=20.0, beta_max=0.1"),
        (lambda: LinearSchedule(beta_min=0.0), ValueError, "0 < beta_min < beta_max"),
        (lambda: LinearSchedule(beta_min=True), TypeError, "beta_min=True must be a real"),
        (lambda: LinearSchedule(beta_max=float("inf")), ValueError, "beta_max=inf must be finite"),
        (lambda: CosineSchedule(s=1.0), ValueError, "0 <= s < 1, got s=1.0"),
        (lambda: CosineSchedule(t_max=1.0), ValueError, "0 < t_max < 1, got t_max=1.0"),
        (lambda: VPProcess(schedule="linear"), TypeError,
         "schedule must be a LinearSchedule or CosineSchedule, got 'linear'"),
        (lambda: VPProcess(t_min=0.0), ValueError, r"t_min=0.0 must lie in \(0, t_max=1.0\)"),
        (lambda: VPProcess(CosineSchedule(), t_min=0.99), ValueError, "t_max=0.98"),
        (lambda: VPProcess(t_min="1e-3"), TypeError, "t_min='1e-3' must be a real number"),
        (lambda: VPProcess.from_config({"process": "ve"}), ValueError,
         "not a VP process configuration"),
        (lambda: VPProcess.from_config({"process": "vp"}), ValueError,
         "needs a 'schedule' entry with a 'kind'"),
        (lambda: VPProcess.from_config({"process": "vp", "schedule": {"kind": "sigmoid"}}),
         ValueError, "unknown schedule kind 'sigmoid'; expected 'linear' or 'cosine'"),
    ],
)
def test_bad_input_is_refused(build, error, match):
    with pytest.raises(error, match=match):
        build()
