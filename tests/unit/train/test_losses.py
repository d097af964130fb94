import dataclasses
import math

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch.nn import functional as F

from spectragrid.core.config import complete_model
from spectragrid.train.losses import build_loss, class_weights, draw_mixup, mixup
from spectragrid.train.settings import TrainSettings

COUNTS = np.array([6, 3, 1])


def settings(config: dict) -> TrainSettings:
    """Complete settings: the schema's defaults and `config`."""
    return TrainSettings.from_config(complete_model({"arch": "cnn", "train": config})["train"])


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_batch(n: int = 32, c: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = gen(seed)
    logits = torch.randn(n, c, generator=g) * 2
    labels = torch.randint(0, c, (n,), generator=g)
    return logits, labels


def test_label_smoothing_matches_a_hand_computation():
    logits = [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]]
    labels = [0, 2]
    eps, c = 0.1, 3
    expected = 0.0
    for row, label in zip(logits, labels, strict=True):
        norm = math.log(sum(math.exp(z) for z in row))
        for k, z in enumerate(row):
            target = 1 - eps + eps / c if k == label else eps / c
            expected -= target * (z - norm)
    expected /= len(labels)
    loss = build_loss(settings({"eps": eps}), COUNTS)(torch.tensor(logits), torch.tensor(labels))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # PyTorch's label_smoothing puts the same 1 - eps + eps / C on the true class.
    reference = F.cross_entropy(torch.tensor(logits), torch.tensor(labels), label_smoothing=eps)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)


def test_balanced_weights_are_sklearns():
    weights = class_weights("balanced", COUNTS)
    assert weights == pytest.approx([10 / 18, 10 / 9, 10 / 3])
    assert float((weights * COUNTS).sum()) == pytest.approx(COUNTS.sum())
    y = np.repeat(np.arange(3), COUNTS)
    assert weights == pytest.approx(compute_class_weight("balanced", classes=np.arange(3), y=y))
    loss = build_loss(settings({"class_weights": "balanced"}), COUNTS)
    assert loss.weight is not None
    assert loss.weight.tolist() == pytest.approx(weights.tolist())


def test_absent_class_gets_weight_one_and_the_sum_still_holds():
    counts = np.array([4, 0, 4])
    weights = class_weights("balanced", counts)
    assert weights.tolist() == pytest.approx([1.0, 1.0, 1.0])
    counts = np.array([6, 0, 2])
    weights = class_weights("balanced", counts)
    assert weights.tolist() == pytest.approx([8 / 12, 1.0, 8 / 4])
    assert float((weights * counts).sum()) == pytest.approx(8)


def test_explicit_and_absent_weights():
    assert class_weights("none", COUNTS) is None
    assert class_weights([1, 2, 0.5], COUNTS).tolist() == [1.0, 2.0, 0.5]
    assert build_loss(settings({}), COUNTS).weight is None


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"class_weights": "inverse"}, "unknown value 'inverse'; allowed: none, balanced"),
        ({"class_weights": [1, 2]}, "3 numbers"),
        ({"class_weights": [1, -2, 1]}, ">= 0"),
        ({"eps": 1.0}, "train.eps"),
        ({"focal_gamma": -1}, "train.focal_gamma"),
        ({"eps": "0.1"}, "expected a number"),
    ],
)
def test_bad_loss_config_is_rejected(config, fragment):
    """Settings made in code, past the schema's checks, are still checked where used;
    a list of class weights of the wrong length passes the schema, which cannot know C."""
    bad = dataclasses.replace(settings({}), **config)
    with pytest.raises(ValueError, match=fragment):
        build_loss(bad, COUNTS)


def test_gamma_zero_is_cross_entropy_with_weights_and_smoothing():
    logits, labels = random_batch()
    eps = 0.1
    plain = build_loss(settings({"eps": eps, "focal_gamma": 0}), COUNTS)(logits, labels)
    assert plain.item() == pytest.approx(
        F.cross_entropy(logits, labels, label_smoothing=eps).item(), rel=1e-6
    )
    weighted = build_loss(settings({"eps": eps, "class_weights": "balanced"}), COUNTS)
    w = torch.tensor(class_weights("balanced", COUNTS), dtype=torch.float32)
    onehot = F.one_hot(labels, 3).float()
    # PyTorch's probability-target form: -sum_c w_c q_c log p_c averaged over B.
    reference = F.cross_entropy(logits, onehot, weight=w, label_smoothing=eps)
    assert weighted(logits, labels).item() == pytest.approx(reference.item(), rel=1e-6)


def test_index_and_one_hot_targets_give_the_same_loss():
    logits, labels = random_batch()
    loss = build_loss(
        settings({"eps": 0.2, "class_weights": "balanced", "focal_gamma": 2.0}), COUNTS
    )
    by_index = loss(logits, labels)
    by_row = loss(logits, F.one_hot(labels, 3).float())
    assert by_index.item() == pytest.approx(by_row.item(), rel=1e-6)


def test_focal_matches_a_hand_computation_with_class_weights():
    logits, labels = random_batch(n=8)
    gamma, weights = 2.0, [1.0, 2.0, 3.0]
    loss = build_loss(settings({"focal_gamma": gamma, "class_weights": weights}), COUNTS)(
        logits, labels
    )
    p = torch.softmax(logits.double(), dim=1)
    expected = 0.0
    for i, y in enumerate(labels.tolist()):
        pt = p[i, y].item()
        expected += weights[y] * (1 - pt) ** gamma * -math.log(pt)
    assert loss.item() == pytest.approx(expected / len(labels), rel=1e-5)


def test_focal_down_weights_easy_examples():
    focal = build_loss(settings({"focal_gamma": 2.0}), COUNTS)
    ce = build_loss(settings({}), COUNTS)
    easy = torch.tensor([[4.0, 0.0, 0.0]])  # p_t about 0.96
    hard = torch.tensor([[0.0, 2.0, 0.0]])  # p_t about 0.11
    target = torch.tensor([0])
    ratios = []
    for logits in (easy, hard):
        pt = torch.softmax(logits, dim=1)[0, 0].item()
        ratio = focal(logits, target).item() / ce(logits, target).item()
        assert ratio == pytest.approx((1 - pt) ** 2, rel=1e-5)
        ratios.append(ratio)
    assert ratios[0] < 0.01 < 0.5 < ratios[1]


def test_focal_gradients_stay_finite_on_confident_logits():
    logits = torch.tensor([[60.0, -60.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    loss = build_loss(settings({"focal_gamma": 0.5, "eps": 0.1}), COUNTS)(
        logits, torch.tensor([0, 1])
    )
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_mixup_is_the_exact_convex_combination_with_the_drawn_lambda():
    g = gen(5)
    spectra = torch.randn(16, 3, 8, generator=g)
    tabular = torch.randn(16, 2, generator=g)
    labels = torch.randint(0, 4, (16,), generator=g)
    onehot = F.one_hot(labels, 4).float()

    state = g.get_state()
    lam, partner = draw_mixup(16, 0.4, g)
    g.set_state(state)
    mixed_spectra, mixed_tabular, soft = mixup(spectra, tabular, onehot, 0.4, g)

    assert 0.0 < lam < 1.0
    assert sorted(partner.tolist()) == list(range(16))
    assert not torch.equal(partner, torch.arange(16))
    assert torch.equal(mixed_spectra, lam * spectra + (1 - lam) * spectra[partner])
    assert torch.equal(mixed_tabular, lam * tabular + (1 - lam) * tabular[partner])
    assert torch.equal(soft, lam * onehot + (1 - lam) * onehot[partner])
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(16))

    # Cross-entropy is linear in the target: the mixed loss mixes the two losses.
    logits = torch.randn(16, 4, generator=gen(6))
    loss = build_loss(settings({}), np.ones(4))
    per_pair = lam * loss(logits, labels) + (1 - lam) * loss(logits, labels[partner])
    assert loss(logits, soft).item() == pytest.approx(per_pair.item(), rel=1e-5)


def test_mixup_is_reproducible_and_alpha_zero_is_off():
    spectra, tabular = torch.randn(8, 2, 5), torch.randn(8, 0)
    onehot = F.one_hot(torch.arange(8) % 2, 2).float()
    first = mixup(spectra, tabular, onehot, 1.0, gen(1))
    second = mixup(spectra, tabular, onehot, 1.0, gen(1))
    other = mixup(spectra, tabular, onehot, 1.0, gen(2))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not torch.equal(first[0], other[0])
    assert first[1].shape == (8, 0)
    off = mixup(spectra, tabular, onehot, 0.0, gen(1))
    assert off[0] is spectra and off[1] is tabular and off[2] is onehot


def test_mixup_lambda_is_beta_distributed():
    alpha = 0.4
    g = gen(11)
    draws = np.array([draw_mixup(4, alpha, g)[0] for _ in range(2000)])
    sd_of_mean = math.sqrt(1 / (4 * (2 * alpha + 1)) / len(draws))
    assert draws.mean() == pytest.approx(0.5, abs=4 * sd_of_mean)
    assert draws.var() == pytest.approx(1 / (4 * (2 * alpha + 1)), abs=0.02)


def test_mixup_rejects_index_targets_and_negative_alpha():
    spectra, tabular = torch.randn(4, 1, 3), torch.randn(4, 0)
    with pytest.raises(ValueError, match=r"\(B, C\)"):
        mixup(spectra, tabular, torch.arange(4), 0.4, gen())
    with pytest.raises(ValueError, match="mixup_alpha"):
        mixup(spectra, tabular, torch.eye(4), -1.0, gen())
