"""Tests of sciffd.pipeline: FieldModel around an exact Gaussian score, and load()."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

import sciffd
from sciffd import sampling
from sciffd.grids import TorusGrid, torus
from sciffd.models import GaussianScore
from sciffd.noise import Matern
from sciffd.pipeline import FieldModel, load

VARIABLE = {"name": "vorticity", "units": "s-1", "long_name": "vorticity",
            "standard_name": "atmosphere_relative_vorticity"}


@pytest.fixture
def exact():
    return GaussianScore(Matern(3.0, 5.0), Matern(2.0, 1.0))


@pytest.fixture
def field_model(exact):
    return FieldModel.from_score_model(exact, variable=VARIABLE,
                                       grid=TorusGrid((16, 16), (2.0, 2.0)), name="gauss")


def test_sample_is_the_sampler_output_labelled(field_model, exact):
    ds = field_model.sample(members=3, seed=5, sampler="heun", steps=6, progress=False)
    reference = sampling.sample(exact, field_model.grid, 3, 5, sampling.Heun(steps=6),
                                progress=False)

    w = ds["vorticity"]
    assert w.dims == ("member", "y", "x")
    np.testing.assert_array_equal(w.values, reference[:, 0])
    np.testing.assert_array_equal(ds["member"].values, np.arange(3))
    np.testing.assert_array_equal(ds["x"].values, np.arange(16) * (2.0 / 16))
    assert w.attrs == {"units": "s-1", "long_name": "vorticity",
                       "standard_name": "atmosphere_relative_vorticity"}
    assert ds["x"].attrs["axis"] == "X" and ds["x"].attrs["units"] == "1"


def test_sample_records_how_it_was_made(field_model):
    ds = field_model.sample(members=2, grid=8, seed=11, sampler="em", steps=5, progress=False)
    a = ds.attrs
    assert a["Conventions"] == "CF-1.8"
    assert a["model"] == "gauss"
    assert a["sampler"] == "EulerMaruyama" and a["steps"] == 5
    assert a["seed"] == 11 and a["members"] == 2
    assert a["resolution"] == "8x8"
    np.testing.assert_array_equal(a["grid_shape"], [8, 8])
    np.testing.assert_array_equal(a["grid_lengths"], [2.0, 2.0])
    assert a["sciffd_version"] == sciffd.__version__


def test_members_are_nested(field_model):
    full = field_model.sample(members=4, seed=2, steps=4, progress=False)
    part = field_model.sample(members=[3, 1], seed=2, steps=4, batch_size=1, progress=False)
    np.testing.assert_array_equal(part["member"].values, [3, 1])
    np.testing.assert_array_equal(part["vorticity"].values,
                                  full["vorticity"].sel(member=[3, 1]).values)


def test_several_channels_keep_a_channel_dim():
    model = GaussianScore(Matern(3.0, 5.0), Matern(2.0, 1.0), channels=2)
    fm = FieldModel.from_score_model(model, variable=VARIABLE, grid=8)
    ds = fm.sample(members=2, steps=2, progress=False)
    assert ds["vorticity"].dims == ("member", "channel", "y", "x")
    assert fm.grid == torus(8)


def test_grid_and_sampler_resolution(field_model):
    assert field_model.resolve_grid(None) == field_model.grid
    assert field_model.resolve_grid(32) == TorusGrid((32, 32), (2.0, 2.0))
    assert field_model.resolve_grid((8, 12)) == TorusGrid((8, 12), (2.0, 2.0))
    assert field_model.resolve_grid(torus(8)) == torus(8)
    with pytest.raises(ValueError, match=r"grid=0: the resolution must be at least 2"):
        field_model.resolve_grid(0)
    with pytest.raises(ValueError, match="must give 2 sizes"):
        field_model.resolve_grid((8, 8, 8))
    with pytest.raises(ValueError, match="has 1 axes"):
        field_model.resolve_grid(torus(8, ndim=1))
    with pytest.raises(TypeError, match="must be None, a resolution"):
        field_model.resolve_grid("fine")

    assert field_model.resolve_sampler(None) == sampling.Heun()
    assert field_model.resolve_sampler("EM", 7) == sampling.EulerMaruyama(steps=7)
    custom = sampling.Heun(steps=3, spacing="uniform")
    assert field_model.resolve_sampler(custom) is custom
    assert field_model.resolve_sampler(custom, 9) == sampling.Heun(steps=9, spacing="uniform")
    with pytest.raises(ValueError, match=r"sampler='rk4' is not known.*\('em', 'heun'\)"):
        field_model.resolve_sampler("rk4")


def test_sigma_stop_default_comes_from_the_model(exact):
    plain = FieldModel(exact, variable=VARIABLE, grid=torus(16), name="plain")
    stopped = FieldModel(exact, variable=VARIABLE, grid=torus(16), name="stopped",
                         config={"sampling": {"sigma_stop": 0.3}})
    assert plain.default_sigma_stop is None and stopped.default_sigma_stop == 0.3
    assert plain.resolve_sampler("heun") == sampling.Heun()
    assert stopped.resolve_sampler("heun", 5) == sampling.Heun(steps=5, sigma_stop=0.3)
    assert stopped.resolve_sampler("em", sigma_stop=None) == sampling.EulerMaruyama()
    assert plain.resolve_sampler("heun", sigma_stop=0.7) == sampling.Heun(sigma_stop=0.7)
    custom = sampling.Heun(steps=3)
    assert stopped.resolve_sampler(custom) is custom  # an object is taken as given
    assert stopped.resolve_sampler(custom, sigma_stop=0.5) == sampling.Heun(steps=3,
                                                                            sigma_stop=0.5)
    with pytest.raises(ValueError, match=r"sigma_stop='auto' must be 'default', None"):
        stopped.resolve_sampler("heun", sigma_stop="auto")
    # the samples are those of the sampler with that sigma_stop, and say so
    ds = stopped.sample(members=2, grid=8, seed=1, steps=4, progress=False)
    want = sampling.sample(exact, torus(8), 2, 1, sampling.Heun(steps=4, sigma_stop=0.3),
                           progress=False)
    np.testing.assert_array_equal(ds["vorticity"].values, want[:, 0])
    assert ds.attrs["sigma_stop"] == 0.3 and "sigma_stop=0.3" in ds.attrs["sampler_config"]
    full = stopped.sample(members=2, grid=8, seed=1, steps=4, progress=False, sigma_stop=None)
    assert full.attrs["sigma_stop"] == "none"


def test_field_model_refuses_bad_metadata(exact):
    with pytest.raises(ValueError, match=r"lacks \['units'\]"):
        FieldModel.from_score_model(exact, variable={"name": "w", "long_name": "w"}, grid=8)
    with pytest.raises(TypeError, match="must be a mapping"):
        FieldModel.from_score_model(exact, variable="vorticity", grid=8)
    with pytest.raises(TypeError, match="ScoreModel"):
        FieldModel.from_score_model(object(), variable=VARIABLE, grid=8)
    with pytest.raises(ValueError, match="at least 2"):
        FieldModel.from_score_model(exact, variable=VARIABLE, grid=1)


def test_load_unknown_name_lists_the_available_models():
    with pytest.raises(ValueError, match=r"unknown model 'no-such-model'.*available"):
        load("no-such-model")
    with pytest.raises(ValueError, match=r"unknown model 'no-such-model'"):
        sciffd.load("no-such-model")


def test_load_without_a_checkpoint_loader_says_so(tmp_path):
    if importlib.util.find_spec("sciffd.training") is not None:
        pytest.skip("sciffd.training is installed; loading is tested with it")
    (tmp_path / "config.json").write_text(json.dumps({"variable": VARIABLE}))
    with pytest.raises(NotImplementedError, match="needs sciffd.training.checkpoint"):
        load(tmp_path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model directory written by sciffd.training.train (one step, a tiny FNO)."""
    training = pytest.importorskip("sciffd.training")
    from sciffd.fields import to_dataset

    grid = TorusGrid((8, 8), (2.0, 2.0))
    u = Matern(3.0, 5.0).sample(grid, members=4, seed=1, dtype=np.float64)[:, 0]
    data = to_dataset(u, grid, "vorticity", {"units": "s-1", "long_name": "vorticity"})
    out = tmp_path_factory.mktemp("run") / "tiny"
    training.train(data, out, steps=1, batch_size=2, progress=False,
                   model_options={"width": 4, "layers": 1, "modes": 2,
                                  "time_features": 4, "time_width": 8})
    return out


def test_load_a_training_directory(trained):
    fm = load(trained, device="cpu")
    assert fm.name == "tiny" and fm.path == trained
    assert fm.grid == TorusGrid((8, 8), (2.0, 2.0))
    assert fm.variable == {"name": "vorticity", "units": "s-1", "long_name": "vorticity"}

    ds = fm.sample(members=2, grid=12, steps=1, progress=False)
    w = ds["vorticity"]
    assert w.shape == (2, 12, 12) and w.dtype == np.float32
    assert np.isfinite(w.values).all()
    assert w.attrs == {"units": "s-1", "long_name": "vorticity"}
    np.testing.assert_array_equal(ds.attrs["grid_lengths"], [2.0, 2.0])
    assert isinstance(sciffd.load(trained), FieldModel)
