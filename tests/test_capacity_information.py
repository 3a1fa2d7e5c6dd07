"""Mutual information (paper 001, Eq. 1), bits per parameter, the CNN convolution-only
capacity of Table 1, and the paper's parameter counts."""
import math

import pytest
import torch

import lowbit.capacity as cap


def test_mutual_information_limits():
    assert cap.mutual_information(1.0, 5000) == 5000
    assert cap.mutual_information(0.0, 5000) == 5000   # always wrong is also fully informative
    assert cap.mutual_information(0.5, 5000) == pytest.approx(0.0, abs=1e-9)
    # a reference value: H(0.9) = 0.4689955935892812
    assert cap.mutual_information(0.9, 1000) == pytest.approx(1000 * (1 - 0.4689955935892812))
    assert cap.binary_entropy(0.25) == pytest.approx(0.8112781244591328)


def test_mutual_information_rejects_bad_input():
    for p in (-0.01, 1.01, math.nan, "0.5", True):
        with pytest.raises(ValueError, match=r"p must be an accuracy in \[0, 1\]"):
            cap.mutual_information(p, 10)
    for n in (0, -3, 2.5):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            cap.mutual_information(0.9, n)


def test_table1_conv_capacity_per_parameter():
    # Paper 001, Table 1: C/param(conv) from the total capacity, crediting 2.3 bits to each
    # FC parameter: model A 4916.6 bits -> 2.483, model C 38674.5 -> 2.99.
    for name, capacity, expected in (("A", 4916.6, 2.483), ("C", 38674.5, 2.99), ("E", 53920.5, 2.86)):
        total, conv = cap.CNN_PAPER_PARAMS[name]
        got = cap.conv_bits_per_parameter(capacity, conv, total - conv)
        assert got == pytest.approx(expected, abs=0.006)
    with pytest.raises(ValueError, match="fc_params"):
        cap.conv_bits_per_parameter(100.0, 10, -1)
    with pytest.raises(ValueError, match="capacity"):
        cap.bits_per_parameter(math.inf, 10)


@pytest.mark.parametrize("name", sorted(cap.CNN_MODELS))
def test_cnn_models_have_the_papers_parameter_counts(name):
    model = cap.cnn_model(name)
    total, conv = cap.CNN_PAPER_PARAMS[name]
    split = cap.parameter_split(model)
    assert cap.count_parameters(model) == total and split["conv"] == conv
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 2)


def test_lstm_and_fcdnn_parameter_counts():
    lstm = cap.MemorizationLSTM(32, 32)
    assert cap.count_parameters(lstm) == 8386          # paper 001, section 4.3
    assert lstm(torch.zeros(3, 5, 32)).shape == (3, 2)
    fc = cap.FCDNN(64, 3)                               # 3 x (64*64 + 64) + (64*2 + 2)
    assert cap.count_parameters(fc) == 3 * 4160 + 130
    assert cap.model_kind(fc) == "fc" and cap.model_kind(lstm) == "rnn"
    with pytest.raises(ValueError, match="name must be one of"):
        cap.cnn_model("G")
