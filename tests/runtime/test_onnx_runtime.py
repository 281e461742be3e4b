"""The edge runtime: torch-free, metadata-driven, provider/threads options, clear errors."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from no_torch import BLOCK_TORCH as _BLOCK_TORCH
from no_torch import REPO

from flowdet.errors import InputError, MissingDependency, ModelFileError


def test_runtime_runs_without_torch(nano_onnx, small_video, tmp_path):
    """OnnxPredictor, load_predictor, tiling and run_stream all work with torch unimportable."""
    script = _BLOCK_TORCH + textwrap.dedent(f"""
        import json, cv2
        try:
            import torch
            raise SystemExit("torch import was not blocked")
        except ModuleNotFoundError:
            pass
        from flowdet.runtime.predict.predictor import load_predictor
        from flowdet.runtime.predict.onnx_runtime import OnnxPredictor
        from flowdet.runtime.predict.tiles import TiledPredictor
        from flowdet.runtime.stream.stream import run_stream
        p = load_predictor({str(nano_onnx)!r}, threads=1)
        assert isinstance(p, OnnxPredictor), type(p)
        cap = cv2.VideoCapture({str(small_video)!r}); ok, img = cap.read(); assert ok
        d = p.predict([img], conf=0.2)[0]
        t = TiledPredictor(p, tile=160, overlap=0.25).predict([img], conf=0.2)[0]
        s = run_stream(p, {str(small_video)!r}, jsonl={str(tmp_path / 'd.jsonl')!r}, max_frames=5)
        bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        print(json.dumps({{"dets": len(d), "tiled": len(t), "frames": s["frames"], "torch": bad}}))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["torch"] == [] and out["frames"] == 5 and out["dets"] > 0 and out["tiled"] > 0


def test_cli_import_is_torch_free():
    r = subprocess.run([sys.executable, "-c", _BLOCK_TORCH + "import flowdet.cli, flowdet.commands.export, "
                        "flowdet.runtime.stream.stream, flowdet.runtime.predict.tensorrt, flowdet.export.tensorrt\nprint('ok')"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_predict_maps_to_original_pixels(nano_onnx):
    """A frame and its 2x upscale give the same detections, scaled by 2 (letterbox undone)."""
    import cv2

    from flowdet.export.parity import synthetic_images
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    p = OnnxPredictor(nano_onnx, threads=1)
    img = synthetic_images(1, (240, 320))[0]
    a = p.predict([img], conf=0.3)[0]
    b = p.predict([cv2.resize(img, (640, 480), interpolation=cv2.INTER_NEAREST)], conf=0.3)[0]
    assert len(a) > 0
    assert a.boxes[:, [0, 2]].max() <= 320 and a.boxes[:, [1, 3]].max() <= 240
    # Downscaling by 2 (INTER_AREA) of a nearest-upscaled image is exact: same input tensor.
    np.testing.assert_allclose(b.boxes, a.boxes * 2, atol=1e-3)
    np.testing.assert_allclose(b.scores, a.scores, atol=1e-6)


def test_empty_batch_and_repr(nano_onnx):
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    p = OnnxPredictor(nano_onnx, threads=1, spinning=False)
    assert p.predict([]) == []
    assert "nano" in repr(p) and "dynamic" in repr(p)
    assert p.providers == ["CPUExecutionProvider"]


def test_unavailable_provider_is_a_user_error(nano_onnx):
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor, resolve_providers

    assert resolve_providers(None)[-1] == "CPUExecutionProvider"
    assert resolve_providers("cpu") == ["CPUExecutionProvider"]
    import onnxruntime as ort

    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(InputError, match="'tensorrt' is not available"):
            OnnxPredictor(nano_onnx, providers="tensorrt")


def test_bad_files_are_user_errors(tmp_path, nano_onnx):
    import onnx

    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    with pytest.raises(ModelFileError, match="model not found"):
        OnnxPredictor(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not onnx")
    with pytest.raises(ModelFileError, match="not a loadable ONNX model"):
        OnnxPredictor(junk)
    m = onnx.load(str(nano_onnx))
    del m.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(m, str(bare))
    with pytest.raises(ModelFileError, match="no flowdet metadata"):
        OnnxPredictor(bare)
    entry = m.metadata_props.add()
    entry.key, entry.value = "names", "[not json"
    entry = m.metadata_props.add()
    entry.key, entry.value = "img_size", "[320, 320]"
    onnx.save(m, str(bare))
    with pytest.raises(ModelFileError, match="'names' is not valid json"):
        OnnxPredictor(bare)


def test_engine_predictor_without_tensorrt(tmp_path):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    from flowdet.runtime.predict.predictor import load_predictor

    with pytest.raises(MissingDependency) as e:
        load_predictor(str(tmp_path / "m.engine"))
    assert e.value.exit_code == 2 and "TensorRT" in e.value.message
