"""Quantizing must not make the user's show-once warnings come back."""

import warnings

import torch
from torch import nn

from neural_coder.runtime.config import PostTrainingQuantConfig
from neural_coder.runtime.quant.qconfigs import _quiet
from neural_coder.runtime.quantization import fit


def _user_warning() -> None:
    warnings.warn("the user's own notice", UserWarning, stacklevel=1)


def test_quiet_keeps_the_record_of_warnings_already_shown():
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("default")
        with _quiet():  # a process's first quantization puts the filters in, once
            pass
        _user_warning()
        with _quiet():
            pass
        _user_warning()
    texts = [str(w.message) for w in shown]
    assert texts == ["the user's own notice"], texts


def test_a_dynamic_fit_does_not_repeat_a_warning_shown_before_it():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("default")
        with _quiet():  # a process's first quantization puts the filters in, once
            pass
        _user_warning()
        assert fit(model, PostTrainingQuantConfig(approach="dynamic")) is not None
        _user_warning()
        model(torch.randn(2, 8))
    assert [str(w.message) for w in shown].count("the user's own notice") == 1
