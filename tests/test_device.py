import random

import pytest
import torch

from workflow_utils.device import get_device, set_seed


def test_get_device_returns_an_available_device():
    device = get_device()
    assert device.type in ("cpu", "cuda", "mps")
    torch.zeros(1, device=device)  # usable, not just named


def test_get_device_cpu_always_available():
    assert get_device("cpu") == torch.device("cpu")


def test_get_device_rejects_unknown_names():
    with pytest.raises(ValueError, match="'cpu', 'cuda', 'mps'"):
        get_device("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_get_device_explains_missing_cuda():
    with pytest.raises(RuntimeError, match="not available"):
        get_device("cuda")


def test_set_seed_repeats_torch_and_python_random():
    set_seed(7)
    first = (torch.rand(3), random.random())
    set_seed(7)
    second = (torch.rand(3), random.random())
    assert torch.equal(first[0], second[0]) and first[1] == second[1]


def test_set_seed_rejects_negative():
    with pytest.raises(ValueError, match="non-negative"):
        set_seed(-1)
