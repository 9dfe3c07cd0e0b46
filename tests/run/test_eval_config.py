"""EvalConfig: every field checked in one place, the round trip through result.json, what a rerun compares."""

import json

import pytest

from srlib.errors import SrlibError
from srlib.run.config import EvalConfig


def test_the_defaults_are_the_papers_setting_and_the_authors_code():
    config = EvalConfig()
    assert (config.k, config.n_draws, config.kernel) == (1e-3, 3, 31)  # Sections 4.3 and 5 of the paper
    assert (config.resize, config.precision, config.image_size) == ("bilinear", "fp32", None)


@pytest.mark.parametrize("change, words", [
    (dict(k=0.0), "k must be in (0, 1]"),
    (dict(k=1.5), "k must be in (0, 1]"),
    (dict(n_draws=0), "n_draws must be at least 1"),
    (dict(image_size=8), "image_size must be at least 16"),
    (dict(resize="nearest"), "unknown resize 'nearest'"),
    (dict(kernel=4), "kernel must be an odd number >= 1"),
    (dict(kernel=0), "kernel must be an odd number >= 1"),
    (dict(precision="fp8"), "unknown evaluation precision 'fp8'"),
    (dict(batch_size=0), "batch_size must be at least 1"),
])
def test_each_bad_value_is_one_line_naming_the_option_and_its_range(change, words):
    with pytest.raises(SrlibError) as err:
        EvalConfig(**change)
    assert words in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(SrlibError):  # a copy is checked too
        EvalConfig().replace(**change)


def test_the_limits_themselves_are_accepted():
    config = EvalConfig(k=1.0, n_draws=1, image_size=16, kernel=1, resize="lanczos", batch_size=1)
    assert config.replace(k=1e-5).k == 1e-5 and config.k == 1.0  # frozen: replace makes a copy


def test_round_trip_through_json_and_through_a_result_record():
    config = EvalConfig(k=3e-3, n_draws=5, image_size=128, resize="lanczos", kernel=15, seed=4, batch_size=2)
    assert EvalConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    record = {"dataset": "textures", "image_auroc": 0.9, **config.to_dict(), "width": 16, "sigma": 25.0}
    assert EvalConfig.from_result(json.loads(json.dumps(record))) == config
    # A result written before kernel, precision and batch_size were recorded took their defaults.
    assert EvalConfig.from_result({"k": 3e-3, "n_draws": 5}) == EvalConfig(k=3e-3, n_draws=5)
    with pytest.raises(SrlibError, match=r"unknown evaluation settings 'colour'; the known ones: k, "):
        EvalConfig.from_dict({**config.to_dict(), "colour": "red"})


def test_differences_name_each_field_and_an_unset_size_matches_any():
    a = EvalConfig(image_size=None)
    assert a.differences(EvalConfig(image_size=192)) == []
    assert a.replace(image_size=128).differences(EvalConfig(image_size=192)) == ["image_size 128 -> 192"]
    assert a.differences(EvalConfig(k=1e-2, seed=1)) == ["k 0.001 -> 0.01", "seed 0 -> 1"]
