"""The three real bugs mypy found, checked by behaviour (``make lint`` runs mypy itself):
``TiledPredictor(p, (640, 960))`` (tests/runtime/test_tiles.py), an attribute set on a
``ValidationReport`` that the class does not declare, and ``ImageFolderSource`` not matching the
``FrameSource`` protocol (its ``fps`` typed ``None``, so no source could be a ``FrameSource``)."""
from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path


def test_validation_report_declares_images_written(tmp_path):
    from flowdet.data.validation import ValidationReport
    from flowdet.data.yolo import coco_to_yolo

    assert "images_written" in {f.name for f in dataclasses.fields(ValidationReport)}
    assert ValidationReport("x").images_written is None  # converters that write no images
    img = tmp_path / "images" / "a.png"
    img.parent.mkdir()
    import cv2
    import numpy as np

    cv2.imwrite(str(img), np.zeros((32, 48, 3), np.uint8))
    (tmp_path / "ann.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 48, "height": 32}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "bottle"}]}))
    _, report = coco_to_yolo(tmp_path / "ann.json", tmp_path / "images", tmp_path / "y")
    assert report.images_written == 1 and report.to_dict()["images_written"] == 1


def _protocol_and_sources(tree: ast.Module) -> tuple[dict[str, str], list[ast.ClassDef]]:
    protocol, sources = {}, []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        if any(isinstance(b, ast.Name) and b.id == "Protocol" for b in node.bases) and node.name == "FrameSource":
            protocol = {s.target.id: ast.unparse(s.annotation) for s in node.body
                        if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
        elif {"open", "read", "close"} <= {f.name for f in node.body if isinstance(f, ast.FunctionDef)}:
            sources.append(node)
    return protocol, sources


def test_every_frame_source_declares_the_protocol_attributes_as_the_protocol_types_them():
    """An attribute the protocol types ``float | None`` set as a bare ``None`` (no annotation) is typed
    ``None`` — a source whose fps can never be a float does not satisfy ``FrameSource``."""
    import flowdet.runtime.stream.sources as sources_module

    tree = ast.parse(Path(sources_module.__file__).read_text(encoding="utf-8"))
    protocol, sources = _protocol_and_sources(tree)
    assert protocol.keys() >= {"live", "description", "fps"} and len(sources) >= 3
    for cls in sources:
        init = next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
        stmts = list(cls.body) + (list(ast.walk(init)) if init else [])
        for name, want in protocol.items():
            for s in stmts:
                target = s.target if isinstance(s, ast.AnnAssign) else (s.targets[0] if isinstance(s, ast.Assign)
                                                                        and len(s.targets) == 1 else None)
                own = (isinstance(target, ast.Name) and s in cls.body) or (
                    isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                    and target.value.id == "self")
                if not own or (target.id if isinstance(target, ast.Name) else target.attr) != name:
                    continue
                if isinstance(s, ast.AnnAssign):
                    assert ast.unparse(s.annotation) == want, (cls.name, name)
                elif isinstance(s.value, ast.Constant):  # unannotated: the constant's own type is the type
                    assert type(s.value.value).__name__ == want, (cls.name, name, want)
