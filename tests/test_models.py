"""Reference models: shapes, structure, argument checks and a smoke training run."""
import pytest
import torch
from torch import nn

import lowbit as lb

from lowbit.models import FFDNN, CharLSTM, LeNet5, SmallVGG, build_model


@pytest.mark.parametrize("model, x", [
    (FFDNN(), torch.rand(4, 1, 28, 28)),
    (FFDNN(in_features=20, width=8, depth=3, num_classes=5, batch_norm=True), torch.rand(4, 20)),
    (LeNet5(), torch.rand(4, 1, 28, 28)),
    (LeNet5(num_classes=3, in_channels=3), torch.rand(4, 3, 28, 28)),
    (SmallVGG(width=8), torch.rand(4, 1, 28, 28)),
], ids=["ffdnn", "ffdnn-bn", "lenet5", "lenet5-rgb", "vgg"])
def test_classifier_output_shapes(model, x):
    num_classes = [m for m in model.modules() if isinstance(m, nn.Linear)][-1].out_features
    assert model(x).shape == (4, num_classes)


def test_ffdnn_layers_and_batch_norm():
    plain = FFDNN(width=16, depth=3)
    linears = [m for m in plain.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [16, 16, 16, 10]
    assert not any(isinstance(m, nn.BatchNorm1d) for m in plain.modules())

    bn = FFDNN(width=16, depth=3, batch_norm=True)
    names = [name for name, m in bn.named_modules() if isinstance(m, nn.BatchNorm1d)]
    assert names == ["hidden.bn1", "hidden.bn2", "hidden.bn3"]
    assert sum(isinstance(m, nn.Linear) for m in bn.modules()) == 4


def test_cnn_layer_names_are_readable():
    names = dict(LeNet5().named_modules())
    assert isinstance(names["features.0"], nn.Conv2d)
    assert isinstance(names["classifier.0"], nn.Linear)
    assert names["classifier.0"].in_features == 400
    vgg = SmallVGG(width=4)
    assert vgg.classifier[0].in_features == 4 * 4 * 3 * 3
    assert sum(isinstance(m, nn.Conv2d) for m in vgg.features.modules()) == 6


def test_charlstm_shapes_and_state_round_trip():
    model = CharLSTM(vocab_size=11, embed=4, hidden=6, layers=2).eval()
    x = torch.randint(0, 11, (3, 7))
    logits, (h, c) = model(x)
    assert logits.shape == (3, 7, 11) and h.shape == c.shape == (2, 3, 6)
    # Feeding the sequence in two halves, carrying the state, equals feeding it at once.
    first, state = model(x[:, :4])
    second, _ = model(x[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), logits)
    assert [n for n, _ in model.named_children()][:2] == ["embed", "lstm"]
    assert isinstance(model.decoder, nn.Linear)
    with pytest.raises(ValueError, match="batch, seq"):
        model(x[0])


def test_build_model():
    assert isinstance(build_model("ffdnn", width=8), FFDNN)
    assert isinstance(build_model("lenet5"), LeNet5)
    assert isinstance(build_model("VGG", width=4), SmallVGG)
    assert isinstance(build_model("charlstm", vocab_size=5), CharLSTM)
    with pytest.raises(ValueError, match="ffdnn, lenet5, vgg, charlstm"):
        build_model("resnet")


@pytest.mark.parametrize("build, name", [
    (lambda: FFDNN(width=0), "width"),
    (lambda: FFDNN(depth=-1), "depth"),
    (lambda: FFDNN(in_features=2.5), "in_features"),
    (lambda: FFDNN(num_classes=True), "num_classes"),
    (lambda: LeNet5(num_classes=0), "num_classes"),
    (lambda: LeNet5(in_channels=0), "in_channels"),
    (lambda: SmallVGG(width=0), "width"),
    (lambda: CharLSTM(0), "vocab_size"),
    (lambda: CharLSTM(5, hidden=0), "hidden"),
    (lambda: CharLSTM(5, layers=0), "layers"),
    (lambda: CharLSTM(5, dropout=1.0), "dropout"),
])
def test_constructor_argument_errors(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_ffdnn_wrong_input_size():
    with pytest.raises(ValueError, match="784"):
        FFDNN()(torch.rand(2, 100))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_few_training_steps_reduce_loss(batch_norm):
    x, y = torch.randn(64, 20), torch.randint(0, 4, (64,))
    model = FFDNN(in_features=20, width=32, depth=2, num_classes=4, batch_norm=batch_norm)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_pretrained_trains_once_then_loads_from_cache(tmp_path):
    first = lb.models.pretrained("lenet5", epochs=1, train_size=512, cache=str(tmp_path), progress=False)
    files = list(tmp_path.glob("lenet5-fmnist-*.pt"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))
    again = lb.models.pretrained("lenet5", epochs=1, train_size=512, cache=str(tmp_path), progress=False)
    for (k, a), (_, b) in zip(first.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k
    assert again.lowbit_test_accuracy == first.lowbit_test_accuracy > 10.0  # better than chance
    x, y = lb.data.load_fashion_mnist("test", limit=200, normalize=True)
    assert 0.0 <= lb.models.accuracy(again, x, y) <= 100.0


def test_pretrained_bad_input(tmp_path):
    with pytest.raises(ValueError, match="no pretrained recipe"):
        lb.models.pretrained("resnet", cache=str(tmp_path))
    with pytest.raises(ValueError, match="epochs"):
        lb.models.pretrained("lenet5", epochs=0, cache=str(tmp_path))
