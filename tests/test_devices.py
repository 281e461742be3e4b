"""--device as ultralytics users write it (0, 0,1, cpu, cuda, cuda:N); a missing device is one line."""
from __future__ import annotations

import pytest
from cli_helpers import run_cli

from flowdet.devices import onnx_providers, parse_device
from flowdet.errors import InputError


@pytest.mark.parametrize("text,want", [("auto", ("auto", [])), (None, ("auto", [])), ("cpu", ("cpu", [])),
                                       ("cuda", ("cuda", [])), ("0", ("cuda", [0])), ("0,1", ("cuda", [0, 1])),
                                       ("cuda:2", ("cuda", [2])), (" CUDA:0,1 ", ("cuda", [0, 1]))])
def test_parse_device(text, want):
    assert parse_device(text) == want


@pytest.mark.parametrize("bad", ["gpu0", "cuda:x", "-1", "tpu"])
def test_bad_device_names_the_flag(bad):
    with pytest.raises(InputError, match="--device"):
        parse_device(bad)


def _has_cuda_torch() -> bool:
    try:
        import torch
    except ImportError:
        return True  # no torch: nothing to test here
    return torch.cuda.is_available()


@pytest.mark.skipif(_has_cuda_torch(), reason="needs a machine without a GPU (or without torch)")
@pytest.mark.parametrize("device", ["0", "cuda", "cuda:1", "0,1"])
def test_train_on_a_missing_gpu_is_one_line(synth_small, tmp_path, capsys, device):
    # Before: `--device 0` was a 45-line traceback, `--device cuda` a torch one.
    code, err = run_cli(capsys, "train", "--data", str(synth_small / "annotations.json"), "--epochs", "1",
                        "--out", str(tmp_path / "r"), "--device", device)
    assert code == 2 and "torch sees none" in err and len(err.strip().splitlines()) <= 2  # + "run folder" note


def test_onnx_predict_on_cuda_uses_the_provider_or_says_why_not(nano_onnx, synth_small, tmp_path, capsys):
    # Before: `predict --model m.onnx --device cuda` ran on the CPU without a word.
    import onnxruntime as ort

    image = next((synth_small / "images").iterdir())
    code, err = run_cli(capsys, "predict", str(image), "--model", str(nano_onnx), "--device", "cuda",
                        "--out", str(tmp_path / "p"), "--no-draw")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert code == 0
        assert onnx_providers("cuda:1")[0] == ("CUDAExecutionProvider", {"device_id": 1})
    else:
        assert code == 2 and "no CUDA provider" in err and "onnxruntime-gpu" in err
    assert onnx_providers("cpu") == ["CPUExecutionProvider"] and onnx_providers("auto") == "auto"
