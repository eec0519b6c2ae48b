"""The discriminator, its losses and R1 at toy size: shapes, signs, and that a D step separates real from fake."""

from __future__ import annotations

import pytest
import torch

from sym3dinv.synthheads.adversarial import Discriminator, d_loss, g_loss, r1_penalty


def test_discriminator_shapes_and_bad_sizes() -> None:
    D = Discriminator(32, (4, 8, 8))
    assert D(torch.randn(3, 3, 32, 32)).shape == (3,)
    with pytest.raises(ValueError, match="halvings"):
        Discriminator(48, (4, 8, 8, 8, 8, 8))


def test_losses_have_the_logistic_values() -> None:
    zero = torch.zeros(4)
    assert float(g_loss(zero)) == pytest.approx(0.6931, abs=1e-4)
    assert float(d_loss(zero, zero)) == pytest.approx(2 * 0.6931, abs=1e-4)
    assert float(d_loss(torch.full((4,), 10.0), torch.full((4,), -10.0))) < 1e-3  # confident and right
    assert float(g_loss(torch.full((4,), 10.0))) < 1e-3  # fakes that fool D


def test_r1_is_the_squared_input_gradient() -> None:
    class Linear(torch.nn.Module):
        def forward(self, x):
            return (x * 2.0).flatten(1).sum(1)

    x = torch.randn(2, 3, 4, 4)
    assert float(r1_penalty(Linear(), x)) == pytest.approx(4.0 * 48, rel=1e-6)  # |grad|^2 = 2^2 per pixel


def test_a_few_d_steps_tell_real_from_fake() -> None:
    torch.manual_seed(0)
    D = Discriminator(16, (8, 8))
    opt = torch.optim.Adam(D.parameters(), lr=1e-2, betas=(0.0, 0.99))
    real = torch.rand(8, 3, 16, 16) * 0.2 + 0.6  # bright
    fake = torch.rand(8, 3, 16, 16) * 0.2 - 0.8  # dark
    with torch.no_grad():
        start = float(d_loss(D(real), D(fake)))
    for _ in range(30):
        loss = d_loss(D(real), D(fake)) + 0.5 * r1_penalty(D, real)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(d_loss(D(real), D(fake))) < 0.5 * start
