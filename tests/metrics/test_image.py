"""MSE / PSNR closed forms and SSIM against scikit-image's reference implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from sym3dinv.errors import ConfigError
from sym3dinv.metrics.image import gaussian_window, mse, psnr, psnr_from_mse, ssim

from .conftest import to_pm1


def test_mse_psnr_closed_form() -> None:
    a = torch.zeros(2, 3, 8, 8)
    b = torch.full((2, 3, 8, 8), 0.1)
    b[1] = 0.2
    torch.testing.assert_close(mse(a, b), torch.tensor([0.01, 0.04]))
    # [-1, 1] images: data range 2 -> PSNR = 10 log10(4 / MSE)
    torch.testing.assert_close(psnr(a, b), torch.tensor([10 * math.log10(400.0), 10 * math.log10(100.0)]))
    assert psnr(a, b, data_range=1.0)[0].item() == pytest.approx(20.0, abs=1e-4)
    assert psnr(a, a)[0].item() == math.inf
    assert psnr_from_mse(0.01) == pytest.approx(10 * math.log10(400.0))


def test_masked_mse_ignores_outside() -> None:
    a = torch.zeros(1, 3, 4, 4)
    b = torch.zeros(1, 3, 4, 4)
    b[..., :2, :] = 1.0  # error only in the top half
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 2:, :] = 1.0
    assert mse(a, b, mask).item() == 0.0
    assert mse(a, b, 1 - mask).item() == 1.0
    assert mse(a, b, torch.ones(1, 4, 4)).item() == pytest.approx(0.5)  # [N, H, W] masks work too
    with pytest.raises(ConfigError):
        mse(a, b, torch.ones(1, 1, 3, 4))


def test_gaussian_window_is_normalised() -> None:
    g = gaussian_window()
    assert g.shape == (11,) and g.sum().item() == pytest.approx(1.0) and g.argmax().item() == 5


@pytest.mark.parametrize("sigma_noise", [0.02, 0.1])
def test_ssim_matches_skimage(astronaut: np.ndarray, sigma_noise: float) -> None:
    img = astronaut[100:260, 150:310]  # 160x160 crop keeps the test fast
    rng = np.random.default_rng(0)
    noisy = np.clip(img.astype(np.float64) + rng.normal(0, 255 * sigma_noise, img.shape), 0, 255).astype(np.uint8)
    a, b = to_pm1(img), to_pm1(noisy)
    ref = structural_similarity(
        a[0].permute(1, 2, 0).double().numpy(), b[0].permute(1, 2, 0).double().numpy(),
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=2.0, channel_axis=2,
    )
    ours = ssim(a, b).item()
    assert abs(ours - ref) < 1e-4, (ours, ref)
    assert 0.0 < ours < 1.0


def test_ssim_identity_batch_and_mask(astronaut: np.ndarray) -> None:
    a = to_pm1(astronaut[:64, :64])
    b = a.clone()
    b[..., :, 32:] = -b[..., :, 32:]  # damage the right half only
    x, y = torch.cat([a, a]), torch.cat([a, b])
    s = ssim(x, y)
    assert s.shape == (2,)
    assert s[0].item() == pytest.approx(1.0, abs=1e-6) and s[1].item() < 0.9
    left = torch.zeros(2, 1, 64, 64)
    left[..., :20] = 1.0  # windows centred here never reach column 32
    assert ssim(x, y, left)[1].item() == pytest.approx(1.0, abs=1e-6)
    assert ssim(x, y, torch.ones(2, 1, 64, 64))[1].item() == pytest.approx(s[1].item(), abs=1e-6)
    with pytest.raises(ConfigError):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
