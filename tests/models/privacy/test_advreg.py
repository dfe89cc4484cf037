import torch
from torch import nn

from models.privacy.advreg import AdversarialRegularizer, InferenceModel

torch.set_num_threads(1)


def test_inference_model_shapes():
    h = InferenceModel(5)
    assert h(torch.rand(7, 5), torch.eye(5)[torch.arange(7) % 5]).shape == (7,)


def test_attack_step_learns_separable_members():
    torch.manual_seed(0)
    n, c = 128, 4
    labels = torch.randint(0, c, (n,))
    member_logits = 8.0 * nn.functional.one_hot(labels, c).float()  # confident on members
    ref_logits = torch.randn(n, c) * 0.1  # unsure on non-members
    reg = AdversarialRegularizer(c, lam=1.0, attack_lr=0.01, seed=0)
    first = reg.inference_loss(member_logits, labels, ref_logits, labels).item()
    for _ in range(200):
        reg.attack_step(member_logits, labels, ref_logits, labels)
    last = reg.inference_loss(member_logits, labels, ref_logits, labels).item()
    assert last < 0.2 < first
    assert reg.last_gain is not None and reg.last_gain > -0.2


def _classifier_grads(lam, steps=50):
    torch.manual_seed(1)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    net = nn.Linear(6, 3)
    xr, yr = torch.randn(32, 6), torch.randint(0, 3, (32,))
    reg = AdversarialRegularizer(3, lam=lam, attack_lr=0.01, seed=0)
    for _ in range(steps):
        reg.attack_step(net(x), y, net(xr), yr)
    net.zero_grad()
    logits = net(x)
    (nn.functional.cross_entropy(logits, y) + reg.penalty(logits, y)).backward()
    return net.weight.grad.clone()


def test_penalty_changes_classifier_gradient_and_lam_zero_is_plain_ce():
    torch.manual_seed(1)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    net = nn.Linear(6, 3)
    nn.functional.cross_entropy(net(x), y).backward()
    plain = net.weight.grad.clone()
    torch.testing.assert_close(_classifier_grads(0.0), plain)
    assert not torch.allclose(_classifier_grads(5.0), plain)


def test_seeded_and_does_not_touch_global_rng():
    torch.manual_seed(3)
    a = AdversarialRegularizer(4, seed=7)
    after_a = torch.rand(1)
    torch.manual_seed(3)
    b = AdversarialRegularizer(4, seed=7)
    after_b = torch.rand(1)
    torch.manual_seed(3)
    expected = torch.rand(1)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)
    assert after_a == after_b == expected
