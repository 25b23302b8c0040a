"""Tests of denoising score matching, checkpoints and resume (sciffd.training)."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
import torch
import xarray as xr
from safetensors.torch import load_file

from sciffd.grids import torus
from sciffd.models import GaussianScore
from sciffd.models.fno import FNO, default_noise
from sciffd.noise import Matern, SpectralGaussian
from sciffd.sde import VPProcess
from sciffd.training import denoising_loss, draw_batch, load_model, train
from sciffd.training.dsm import network_loss

TINY = {"width": 6, "layers": 1, "modes": 3, "time_features": 4, "time_width": 8}


def _gaussian_data(n=64, size=8, seed=0, scale=2.0):
    g = torus(size)
    return Matern(3.0, 2 * np.pi, scale).sample(g, n, seed=seed), g


def _tiny_run(path, data, g, **kwargs):
    options = {"steps": 4, "batch_size": 4, "progress": False, "model_options": TINY,
               "checkpoint_every": 2}
    options.update(kwargs)
    return train(data, path, grid=g, **options)


def _read_metrics(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def test_training_approaches_the_bayes_optimal_loss(tmp_path, monkeypatch):
    """Gaussian data: the trained FNO's loss approaches that of the exact denoiser.

    The data are ``N(0, Q)`` with a Matern ``Q`` smoother than the noise, so
    the exact denoiser (``GaussianScore``) is a Wiener filter whose gain
    depends on the mode and on ``sigma``; its EDM-weighted loss is the
    Bayes risk ``L_B``, below any model's. The untrained model
    ``D = m + c_skip (x - m)`` is the best denoiser that shrinks each point
    alone, with loss ``L_0``. We ask the trained model to close at least 80%
    of the gap, ``L - L_B <= 0.2 (L_0 - L_B)``: a small network (width 16,
    2 layers) after 300 steps of batch 32 is not at the optimum, but a
    model that did not learn the mode-dependent gain would stay near ``L_0``.
    The scalar EDM skip is used so that the network has the whole gain to
    learn (the Gaussian skip would start at the optimum for Gaussian data).
    All three losses are evaluated on the same 2048 fresh samples, noise
    draws and noise levels, and the bound is checked at its one-sided 3
    sigma confidence limit over those samples.
    """
    # one thread: small tensors gain little from two, and lose much on a shared machine
    monkeypatch.setenv("SCIFFD_FFT_WORKERS", "1")
    g = torus(16)
    Q = Matern(3.0, 2 * np.pi * 1.5, 1.0)
    Q = Matern(3.0, 2 * np.pi * 1.5, 2.0 / math.sqrt(Q.pointwise_variance(g)))
    noise = default_noise(g)
    out = train(Q.sample(g, 1024, seed=11), tmp_path / "run", grid=g, steps=300,
                batch_size=32, lr=3e-3, ema_decay=0.99, progress=False, seed=1, skip="edm",
                model_options={"width": 16, "layers": 2, "modes": 8, "time_width": 32})
    model, config = load_model(out)
    exact = GaussianScore(Q, noise, model.process)

    held_out = torch.as_tensor(Q.sample(g, 2048, seed=99))
    std = torch.tensor(model.data_std, dtype=torch.float32)
    mean = torch.tensor(model.data_mean, dtype=torch.float32).reshape(1, 1, 1, 1)
    losses = {"fno": [], "bayes": [], "skip": []}
    with torch.no_grad():
        for k in range(64):
            b = draw_batch(held_out, g, model.process, noise, step=k, batch_size=32, seed=5,
                           sigma_ref=config["training"]["sigma_ref"])
            x = b.x
            a = model.process.a(b.t.numpy()).reshape(-1, 1, 1, 1)
            bayes = torch.as_tensor(exact.denoise(a * x.double().numpy(), b.t.numpy(), g))
            c_skip = model.coefficients(b.sigma, 2)[0]
            for name, d in [("fno", model.denoise_rescaled(x, b.sigma)),
                            ("bayes", bayes.float()), ("skip", mean + c_skip * (x - mean))]:
                losses[name].append(denoising_loss(d, b.u0, b.sigma, std).numpy())
    L, LB, L0 = (np.concatenate(losses[k]).astype(np.float64) for k in ("fno", "bayes", "skip"))
    n = L.size

    excess = L - LB
    # no model beats the Bayes risk beyond sampling noise
    assert excess.mean() > -3 * excess.std() / math.sqrt(n)
    # the gap to close is real ...
    gap = L0 - LB
    assert gap.mean() > 3 * gap.std() / math.sqrt(n)
    # ... and at least 80% of it is closed (upper 3-sigma bound of the excess)
    z = excess - 0.2 * gap
    assert z.mean() + 3 * z.std() / math.sqrt(n) < 0

    # the training loss went down: first 20 steps against the last 50
    trace = np.array([m["loss"] for m in _read_metrics(out)])
    early, late = trace[:20], trace[-50:]
    se = math.sqrt(early.var() / early.size + late.var() / late.size)
    assert early.mean() - late.mean() > 3 * se


def test_network_loss_equals_the_weighted_denoising_loss():
    """The loss on the network output is ``lambda |D - u_0|^2 / std^2`` (grid mean)."""
    torch.manual_seed(0)
    from sciffd.models.fno import FNODenoiser

    g = torus(12)
    net = FNO(2, width=6, layers=1, modes=4)
    torch.nn.init.normal_(net.project[2].weight)
    model = FNODenoiser(net, VPProcess(), default_noise(g), data_mean=[0.5, -1.0],
                        data_std=[2.0, 0.3], channels=2)
    samples = torch.as_tensor(Matern(2.5, 8.0, 1.0).sample(g, 16, seed=2, channels=2))
    b = draw_batch(samples, g, model.process, model.noise, step=0, batch_size=8, seed=0,
                   sigma_ref=1.0)
    with torch.no_grad():
        direct = denoising_loss(model.denoise_rescaled(b.x, b.sigma), b.u0, b.sigma,
                                torch.tensor([2.0, 0.3])).mean()
        torch.testing.assert_close(network_loss(model, b), direct, rtol=1e-4, atol=0)


def test_batches_depend_on_seed_and_step_only():
    data, g = _gaussian_data()
    samples = torch.as_tensor(data)
    p, noise = VPProcess(), default_noise(g)
    a = draw_batch(samples, g, p, noise, step=3, batch_size=5, seed=1)
    b = draw_batch(samples, g, p, noise, step=3, batch_size=5, seed=1)
    c = draw_batch(samples, g, p, noise, step=4, batch_size=5, seed=1)
    assert torch.equal(a.x, b.x) and torch.equal(a.t, b.t)
    assert not torch.equal(a.xi, c.xi)
    assert ((a.t >= p.t_min) & (a.t <= p.t_max)).all()
    torch.testing.assert_close(p.sigma(a.t).float(), a.sigma, rtol=1e-5, atol=0)


def test_noise_levels_are_log_normal():
    """``ln(sigma / sigma_ref)`` of many draws has EDM's mean and spread."""
    data, g = _gaussian_data(n=4)
    samples = torch.as_tensor(data)
    # with t_min = 1e-5 the clipping range [sigma(t_min), sigma(t_max)] = [1e-3, 152]
    # lies beyond 4.7 standard deviations of N(-1.2, 1.2^2) on both sides
    p = VPProcess(t_min=1e-5)
    noise = Matern(2.0, 8.0, 1.0)
    log_sigma = np.concatenate([
        np.log(draw_batch(samples, g, p, noise, step=k, batch_size=64, seed=3,
                          sigma_ref=1.0).sigma.numpy()) for k in range(16)])
    n = log_sigma.size
    # mean within 4 standard errors
    assert abs(log_sigma.mean() + 1.2) < 4 * 1.2 / math.sqrt(n)
    # variance: chi-square with n - 1 dof, 4 sigma in its normal approximation
    assert abs(log_sigma.var(ddof=1) / 1.44 - 1) < 4 * math.sqrt(2 / (n - 1))


def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path):
    data, g = _gaussian_data()
    straight = _tiny_run(tmp_path / "straight", data, g, steps=6)
    _tiny_run(tmp_path / "resumed", data, g, steps=6, stop_after=3)
    first = _read_metrics(tmp_path / "resumed")
    assert [m["step"] for m in first] == [1, 2, 3]
    resumed = _tiny_run(tmp_path / "resumed", data, g, steps=6, resume=True)

    a = load_file(straight / "checkpoint.safetensors")
    b = load_file(resumed / "checkpoint.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)
    torch.testing.assert_close(load_file(straight / "weights.safetensors"),
                               load_file(resumed / "weights.safetensors"))
    la, lb = _read_metrics(straight), _read_metrics(resumed)
    assert [m["step"] for m in lb] == list(range(1, 7))
    np.testing.assert_allclose([m["loss"] for m in la], [m["loss"] for m in lb], rtol=1e-6)
    assert json.loads((resumed / "state.json").read_text())["step"] == 6


def test_resume_refuses_a_different_run_and_fresh_start_refuses_a_used_dir(tmp_path):
    data, g = _gaussian_data()
    out = _tiny_run(tmp_path / "run", data, g, steps=2)
    with pytest.raises(FileExistsError, match="pass resume=True"):
        _tiny_run(out, data, g, steps=2)
    with pytest.raises(ValueError, match=r"differs from the one in .* \['network'\]"):
        _tiny_run(out, data, g, steps=4, resume=True, model_options={**TINY, "width": 8})
    with pytest.raises(ValueError, match="training.lr"):
        _tiny_run(out, data, g, steps=4, resume=True, lr=0.1)
    # a longer run continues; with nothing left to do, a resume just rewrites the files
    _tiny_run(out, data, g, steps=3, resume=True)
    assert json.loads((out / "state.json").read_text())["step"] == 3
    # resume=True in an empty folder starts a new run
    fresh = _tiny_run(tmp_path / "new", data, g, steps=1, resume=True)
    assert json.loads((fresh / "state.json").read_text())["step"] == 1


def test_checkpoint_round_trip(tmp_path):
    data, g = _gaussian_data()
    out = _tiny_run(tmp_path / "run", data, g, steps=3)
    model, config = load_model(out)
    again, _ = load_model(out, device="cpu")

    # the sampling weights are the EMA in the resumable checkpoint
    state = load_file(out / "checkpoint.safetensors")
    net = FNO(**config["network"])
    net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("ema.")})
    u = torch.as_tensor(data[:3])
    t = torch.tensor([0.1, 0.5, 0.9])
    with torch.no_grad():
        d1, d2 = model.denoise(u, t, g), again.denoise(u, t, g)
    assert torch.equal(d1, d2)
    for name, p in net.named_parameters():
        assert torch.equal(p, dict(model.network.named_parameters())[name])

    # the configuration describes the model completely
    cfg = model.config()
    assert cfg["network"] == config["network"] and cfg["noise"] == config["noise"]
    assert config["process"] == model.process.to_config()
    np.testing.assert_allclose(config["data"]["mean"], [data.mean()], rtol=1e-5)
    np.testing.assert_allclose(config["data"]["std"], [data.std()], rtol=1e-5)
    assert config["grid"] == {"shape": [8, 8], "lengths": [1.0, 1.0]}
    assert config["variable"] == {"name": "vorticity", "units": "1", "long_name": "vorticity"}
    assert config["sciffd_version"]
    assert config["training"]["steps"] == 3 and config["training"]["seed"] == 0


def test_metrics_log(tmp_path):
    data, g = _gaussian_data()
    out = _tiny_run(tmp_path / "run", data, g, steps=5, checkpoint_every=2)
    lines = _read_metrics(out)
    assert [m["step"] for m in lines] == [1, 2, 3, 4, 5]
    for m in lines:
        assert {"step", "loss", "lr", "grad_norm", "seconds"} <= m.keys()
        assert math.isfinite(m["loss"]) and m["grad_norm"] >= 0 and m["seconds"] > 0


def test_xarray_dataset_with_member_and_time(tmp_path):
    data, g = _gaussian_data(n=12)
    x = g.coords(1)
    ds = xr.Dataset(
        {"vorticity": (("member", "time", "y", "x"), data.reshape(3, 4, 8, 8),
                       {"units": "s-1", "long_name": "relative vorticity"}),
         "other": (("y", "x"), np.zeros((8, 8)))},
        coords={"y": ("y", g.coords(0), {"units": "1", "axis": "Y"}),
                "x": ("x", x, {"units": "1", "axis": "X"})},
    )
    out = train(ds, tmp_path / "run", steps=2, batch_size=4, progress=False,
                model_options=TINY)
    config = json.loads((out / "config.json").read_text())
    assert config["variable"] == {"name": "vorticity", "units": "s-1",
                                  "long_name": "relative vorticity"}
    assert config["data"]["samples"] == 12
    assert config["grid"]["shape"] == [8, 8]
    with pytest.raises(ValueError, match=r"variable='psi' is not in the dataset; its "
                                         r"variables are \['other', 'vorticity'\]"):
        train(ds, tmp_path / "other", variable="psi", steps=2, progress=False)


def test_bad_input_is_refused(tmp_path):
    data, g = _gaussian_data()
    run = tmp_path / "run"
    with pytest.raises(ValueError, match=r"data has shape \(64, 1, 8, 8\); expected "
                                         r"\(N, C, \*\(16, 16\)\)"):
        train(data, run, grid=torus(16), progress=False)
    with pytest.raises(ValueError, match=r"expected \(N, C"):
        train(data[:, 0], run, grid=g, progress=False)
    bad = data.copy()
    bad[3, 0, 2, 2] = np.nan
    with pytest.raises(ValueError, match="has 1 NaN or infinite value"):
        train(bad, run, grid=g, progress=False)
    with pytest.raises(ValueError, match="steps=0 must be an integer >= 1"):
        train(data, run, grid=g, steps=0, progress=False)
    with pytest.raises(ValueError, match="steps=-5"):
        train(data, run, grid=g, steps=-5, progress=False)
    with pytest.raises(TypeError, match="grid= .* is required"):
        train(data, run, progress=False)
    with pytest.raises(TypeError, match="data must be an xarray.Dataset or a numpy array"):
        train([1, 2, 3], run, grid=g, progress=False)
    with pytest.raises(ValueError, match=r"model_options has unknown keys \['depth'\]"):
        train(data, run, grid=g, model_options={"depth": 3}, progress=False)
    with pytest.raises(ValueError, match="zero variance"):
        train(np.ones_like(data), run, grid=g, progress=False)
    with pytest.raises(ValueError, match="lr=0.0 must be positive"):
        train(data, run, grid=g, lr=0.0, progress=False)
    with pytest.raises(ValueError, match="ema_decay=1.5"):
        train(data, run, grid=g, ema_decay=1.5, steps=1, progress=False)
    with pytest.raises(TypeError, match="no configuration form"):
        train(data, run, grid=g, noise=SpectralGaussian(lambda k2: (1 + k2) ** -2.0),
              progress=False)
    # a huge rate throws the weights to ~1e30 in one step: the next loss overflows
    with pytest.raises(FloatingPointError, match="training diverged at step [1-4]"):
        train(data, tmp_path / "diverge", grid=g, steps=5, lr=1e30, warmup=0,
              progress=False, model_options=TINY)


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        load_model(tmp_path / "empty")

    data, g = _gaussian_data()
    out = _tiny_run(tmp_path / "run", data, g, steps=1)
    weights = (out / "weights.safetensors").read_bytes()
    (out / "weights.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_model(out)
    (out / "weights.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="weights.safetensors does not exist"):
        load_model(out)
    (out / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_model(out)
    (out / "config.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="is not an FNO model configuration"):
        load_model(out)


def _is_safetensors(blob: bytes) -> bool:
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + size])
    dtypes = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    return dtypes <= {"F32", "F64", "I64", "F16", "BF16", "I32"}


def test_checkpoints_hold_no_pickle(tmp_path, monkeypatch):
    data, g = _gaussian_data()
    out = _tiny_run(tmp_path / "run", data, g, steps=2)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["checkpoint.safetensors", "config.json", "metrics.jsonl", "state.json",
                     "weights.safetensors"]
    for path in out.iterdir():
        blob = path.read_bytes()
        # neither a pickle stream (protocol 2+ opens with 0x80) nor torch's zip archive
        assert not blob.startswith((b"\x80", b"PK"))
        if path.suffix == ".safetensors":
            assert _is_safetensors(blob)
        elif path.suffix == ".jsonl":
            [json.loads(line) for line in blob.decode().splitlines()]
        else:
            json.loads(blob)

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load must not be used")

    monkeypatch.setattr(torch, "load", refuse)
    load_model(out)
    _tiny_run(out, data, g, steps=3, resume=True)


def test_one_and_three_dimensional_fields(tmp_path):
    for shape in [(16,), (6, 6, 6)]:
        g = torus(shape)
        data = Matern(3.0, 6.0, 1.0, ndim=g.ndim).sample(g, 8, seed=1, channels=2)
        out = _tiny_run(tmp_path / f"run{g.ndim}", data, g, steps=2)
        model, config = load_model(out)
        assert config["noise"]["ndim"] == g.ndim and model.channels == 2
        with torch.no_grad():
            assert model.denoise(torch.as_tensor(data[:3]), 0.5, g).shape == (3, 2) + shape


def test_training_leaves_torch_thread_count_alone(tmp_path):
    data, g = _gaussian_data()
    before = torch.get_num_threads()
    _tiny_run(tmp_path / "run", data, g, steps=1)
    assert torch.get_num_threads() == before


def test_model_files_get_ordinary_permissions(tmp_path):
    """Checkpoint files are written through a private temporary file; the result has the
    permissions of an ordinary new file (``0o666 & ~umask``), so others can load it."""
    import os

    from sciffd.training import checkpoint as ckpt

    umask = os.umask(0o022)
    try:
        ckpt.write_json(tmp_path / "config.json", {"a": 1})
        mode = (tmp_path / "config.json").stat().st_mode & 0o777
    finally:
        os.umask(umask)
    assert mode == 0o644
