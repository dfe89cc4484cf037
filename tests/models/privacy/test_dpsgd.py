import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from models.privacy.dpsgd import epsilon, fix_module, make_private

torch.set_num_threads(1)


def _data(n=64, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) * 10.0  # large inputs: large per-sample gradients
    y = torch.randint(0, 3, (n,), generator=g)
    return TensorDataset(x, y)


def test_clips_per_sample_gradients_without_noise():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
    loader = DataLoader(_data(), batch_size=16)
    c = 0.01
    dp = make_private(net, torch.optim.SGD(net.parameters(), lr=0.1), loader,
                      noise_multiplier=0.0, max_grad_norm=c, seed=0,
                      poisson_sampling=False)  # fmt: skip
    xb, yb = next(iter(dp.data_loader))
    loss = nn.functional.cross_entropy(dp.module(xb), yb)
    loss.backward()
    params = [p for p in dp.module.parameters() if p.requires_grad]
    per_sample = torch.stack([p.grad_sample.flatten(1).norm(dim=1) for p in params]).norm(dim=0)
    assert per_sample.shape == (16,)
    assert per_sample.max() > 10 * c  # unclipped gradients are far above the bound
    dp.optimizer.pre_step()  # clip + (zero) noise + average, as step() does
    total = torch.stack([p.grad.norm() for p in params]).norm()
    assert total <= c * (1 + 1e-4)  # mean of per-sample grads each clipped to norm <= c
    for p in params:
        clipped = p.grad_sample.flatten(1) * (c / (per_sample + 1e-6)).clamp(max=1.0)[:, None]
        torch.testing.assert_close(p.grad.flatten(), clipped.sum(0) / 16, rtol=1e-4, atol=1e-7)


def test_epsilon_is_finite_and_grows_with_steps():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 3))
    dp = make_private(net, torch.optim.SGD(net.parameters(), lr=0.1),
                      DataLoader(_data(), batch_size=16), noise_multiplier=1.0,
                      max_grad_norm=1.0, seed=0)  # fmt: skip
    assert epsilon(dp.engine, 1e-5) == 0.0
    eps = []
    for _ in range(2):
        for xb, yb in dp.data_loader:
            if len(xb) == 0:
                continue
            dp.optimizer.zero_grad()
            nn.functional.cross_entropy(dp.module(xb), yb).backward()
            dp.optimizer.step()
        eps.append(epsilon(dp.engine, 1e-5))
    assert all(math.isfinite(e) and e > 0 for e in eps)
    assert eps[1] > eps[0]


def test_noise_changes_the_update():
    def update(noise):
        torch.manual_seed(0)
        net = nn.Linear(8, 3)
        before = net.weight.detach().clone()
        dp = make_private(net, torch.optim.SGD(net.parameters(), lr=0.1),
                          DataLoader(_data(), batch_size=64), noise_multiplier=noise,
                          max_grad_norm=1.0, seed=1, poisson_sampling=False)  # fmt: skip
        xb, yb = next(iter(dp.data_loader))
        nn.functional.cross_entropy(dp.module(xb), yb).backward()
        dp.optimizer.step()
        return dp.network.weight.detach() - before

    assert not torch.allclose(update(0.0), update(5.0))


def test_batchnorm_is_fixed_and_reported():
    net = nn.Sequential(nn.Linear(8, 4), nn.BatchNorm1d(4), nn.Linear(4, 3))
    fixed, changed = fix_module(net)
    assert changed and not any(isinstance(m, nn.BatchNorm1d) for m in fixed.modules())
    with pytest.raises(ValueError, match="optimizer_factory"):
        make_private(net, torch.optim.SGD(net.parameters(), lr=0.1),
                     DataLoader(_data(), batch_size=16), noise_multiplier=1.0,
                     max_grad_norm=1.0)  # fmt: skip
    dp = make_private(
        net,
        None,
        DataLoader(_data(), batch_size=16),
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        optimizer_factory=lambda ps: torch.optim.SGD(ps, lr=0.1),
    )
    assert dp.fixed


def test_bad_arguments():
    net = nn.Linear(8, 3)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loader = DataLoader(_data(), batch_size=16)
    with pytest.raises(ValueError, match="max_grad_norm"):
        make_private(net, opt, loader, noise_multiplier=1.0, max_grad_norm=0.0)
    with pytest.raises(ValueError, match="noise_multiplier"):
        make_private(net, opt, loader, noise_multiplier=-1.0, max_grad_norm=1.0)
