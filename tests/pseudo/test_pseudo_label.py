"""`flowdet pseudo-label` end to end on a tiny video with known tracks: the json flowdet's own loader
reads, ignore regions as iscrowd, scored before / after the filter; sources without time order; the
run-folder rule; bad inputs as one line, exit 2; an ONNX teacher without torch."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
from cli_helpers import run_cli, run_cli_captured
from no_torch import run_without_torch
from pseudo_helpers import ScriptedTeacher, truth, write_video

from flowdet.data.coco import load_coco
from flowdet.pseudo.label import pseudo_label

FALSE_BOX = (100, 5, 110, 15)


def _run(tmp_path, teacher=None, **kw):
    video = tmp_path / "video.mp4"
    if not video.exists():
        write_video(video, 30)
    teacher = teacher or ScriptedTeacher(miss={10: [0], 11: [0], 20: [1]}, false={5: [(FALSE_BOX, 0.8)]})
    return pseudo_label(teacher, [video], tmp_path / "out", score_against=tmp_path / "video.json", **kw)


def test_video_pseudo_labels_load_and_score(tmp_path):
    s = _run(tmp_path)
    assert s["totals"]["frames"] == 30 and s["totals"]["tracks"] == 2 and s["totals"]["filled"] == 3
    data = json.loads((tmp_path / "out" / "pseudo.json").read_text())
    ds = load_coco(tmp_path / "out" / "pseudo.json")   # flowdet's own loader: images found, nothing dropped
    assert len(ds.records) == 30 and not ds.report.problems and ds.names == ["bottle"]
    assert ds.images_dir == (tmp_path / "out" / "images").resolve() or ds.images_dir.name == "images"
    assert (tmp_path / "out" / "images" / "video" / "000000.jpg").is_file()
    anns = data["annotations"]
    assert {a["source"] for a in anns} == {"track", "gap", "detection"}
    for a in anns:
        assert {"score", "track_id", "source", "iscrowd"} <= set(a)
        assert (a["track_id"] is not None) == (a["source"] != "detection") and a["iscrowd"] == (a["source"] == "detection")
    # the false box seen once is an ignore region; the loader gives it ignore=True (not a training target)
    crowd = [a for a in anns if a["iscrowd"]]
    assert len(crowd) == 1 and crowd[0]["bbox"] == [100, 5, 10, 10]
    rec = next(r for r in ds.records if r.image_id == crowd[0]["image_id"])
    assert rec.ignore.sum() == 1
    # the frames the teacher missed hold an interpolated box on the object
    true = truth(30)
    gaps = [a for a in anns if a["source"] == "gap"]
    assert sorted(a["image_id"] - 1 for a in gaps) == [10, 11, 20]
    for a in gaps:
        x, y, w, h = a["bbox"]
        assert min(np.abs(true[a["image_id"] - 1][:, :2] - [x, y]).max(1)) <= 1.0
    sc = s["score"]
    assert sc["images"] == 30 and sc["gt_boxes"] == 60
    assert (sc["before"]["tp"], sc["before"]["fp"], sc["before"]["fn"]) == (57, 1, 3)
    assert (sc["after"]["tp"], sc["after"]["fp"], sc["after"]["fn"]) == (60, 0, 0)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["score"] == sc and summary["sources"][0]["kept"] == 57


def test_a_used_out_folder_is_never_overwritten(tmp_path):
    _run(tmp_path)
    before = (tmp_path / "out" / "pseudo.json").read_bytes()
    s = _run(tmp_path)
    assert s["out_dir"] == str(tmp_path / "out2") and (tmp_path / "out" / "pseudo.json").read_bytes() == before
    assert _run(tmp_path, exist_ok=True)["out_dir"] == str(tmp_path / "out")


def test_a_folder_has_no_time_order_unless_sequence(tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    write_video(tmp_path / "v.mp4", 12)
    cap = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    for k in range(12):
        cv2.imwrite(str(folder / f"f{k:03d}.png"), cap.read()[1])
    cap.release()
    s = pseudo_label(ScriptedTeacher(false={3: [(FALSE_BOX, 0.8)]}), [folder], tmp_path / "a")
    assert "no time order" in capsys.readouterr().err
    row = s["sources"][0]
    assert not row["ordered"] and row["tracks"] == 0 and row["kept"] == 25 and row["ignored"] == 0
    assert os.path.samefile(tmp_path / "a" / "images" / "frames" / "f000.png", folder / "f000.png")  # linked, not re-encoded
    assert len(load_coco(tmp_path / "a" / "pseudo.json").records) == 12
    s = pseudo_label(ScriptedTeacher(false={3: [(FALSE_BOX, 0.8)]}), [folder], tmp_path / "b", sequence=True)
    assert s["sources"][0]["ordered"] and s["sources"][0]["tracks"] == 2 and s["totals"]["ignored"] == 1


def test_exist_ok_replaces_an_earlier_runs_links_never_writes_through_them(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(3):   # named as a video's frames would be: images/frames/000000.jpg in both runs
        cv2.imwrite(str(folder / f"{k:06d}.jpg"), np.full((120, 160, 3), 40 * k, np.uint8))
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    pseudo_label(ScriptedTeacher(), [folder], tmp_path / "out")
    stored = tmp_path / "out" / "images" / "frames" / "000000.jpg"
    assert os.path.samefile(stored, folder / "000000.jpg")  # a hard link to the user's file
    (tmp_path / "v").mkdir()
    write_video(tmp_path / "v" / "frames.mp4", 3)
    pseudo_label(ScriptedTeacher(), [tmp_path / "v" / "frames.mp4"], tmp_path / "out", exist_ok=True)
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before
    assert not os.path.samefile(stored, folder / "000000.jpg")
    pseudo_label(ScriptedTeacher(), [folder], tmp_path / "out", exist_ok=True)   # and back: links again
    assert os.path.samefile(stored, folder / "000000.jpg")


def test_mined_frames_are_tracked_with_their_gaps(tmp_path):
    write_video(tmp_path / "v.mp4", 24)
    mined = tmp_path / "mined"
    (mined / "frames" / "v").mkdir(parents=True)
    cap, lines = cv2.VideoCapture(str(tmp_path / "v.mp4")), []
    for k in range(24):
        img = cap.read()[1]
        if k % 2 == 0:   # mined every 2nd frame
            cv2.imwrite(str(mined / "frames" / "v" / f"{k:06d}.jpg"), img)
            lines.append(json.dumps({"source": str(tmp_path / "v.mp4"), "frame": k, "path": f"frames/v/{k:06d}.jpg"}))
    cap.release()
    (mined / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    s = pseudo_label(ScriptedTeacher(miss={5: [0]}), [mined], tmp_path / "out", score_against=tmp_path / "v.json")
    row = s["sources"][0]
    assert row["kind"] == "manifest" and row["ordered"] and row["frames"] == 12 and row["tracks"] == 2
    assert row["filled"] == 1 and s["score"]["images"] == 12 and s["score"]["after"]["recall"] == 1.0


def test_bad_inputs_are_one_line_exit_2(tmp_path, capsys):
    """Sources and thresholds are checked before the teacher loads (so any model file will do there)."""
    (tmp_path / "bad.mp4").write_text("not a video")
    (tmp_path / "empty").mkdir()
    (tmp_path / "model.onnx").write_text("not a model")
    model = str(tmp_path / "model.onnx")
    write_video(tmp_path / "v.mp4", 6)
    cv2.imwrite(str(tmp_path / "still.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "other.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "still.png"}],
                                                     "annotations": [], "categories": [{"id": 1, "name": "b"}]}))
    cases = [([str(tmp_path / "bad.mp4")], model, "bad.mp4"),
             ([str(tmp_path / "v.mp4"), "--score-against", str(tmp_path / "other.json")], model, "other.json"),
             ([str(tmp_path / "empty")], model, "empty"),
             ([str(tmp_path / "missing.mp4")], model, "missing.mp4"),
             ([str(tmp_path / "v.mp4")], model, "model.onnx")]
    for src, model, name in cases:
        code, err = run_cli(capsys, "pseudo-label", *src, "--model", model, "--out", str(tmp_path / "o"))
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and name in lines[0] and "Traceback" not in err, (name, err)
    assert not (tmp_path / "o").exists()   # nothing written before every input checked
    code, err = run_cli(capsys, "pseudo-label", str(tmp_path / "v.mp4"), "--model", model, "--out",
                        str(tmp_path / "o"), "--score-against", str(tmp_path / "v.json"), "--low", "0.6")
    assert code == 2 and "--low" in err and len(err.strip().splitlines()) == 1


def test_cli_with_an_onnx_teacher_flip_and_tiles(tmp_path, capsys, nano_onnx):
    """A random-weight teacher: hundreds of boxes a view, so the floor is raised to keep the test short."""
    write_video(tmp_path / "v.mp4", 4)
    code, out, err = run_cli_captured(
        capsys, "pseudo-label", str(tmp_path / "v.mp4"), "--model", str(nano_onnx), "--out", str(tmp_path / "o"),
        "--tta", "flip", "--tiles", "96", "--threads", "1", "--low", "0.4", "--ignore-above", "0.45",
        "--score-against", str(tmp_path / "v.json"))
    assert code == 0, err
    # the closing block: the folder's files, then the training command that uses them
    assert f"wrote {tmp_path / 'o'}: images/, pseudo.json, summary.json" in out
    assert f"next: flowdet train --data DATA --pseudo {tmp_path / 'o'}" in out
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["teacher"]["tta"] == "flip" and s["teacher"]["tiles"] == 96 and s["score"]["images"] == 4
    assert len(load_coco(tmp_path / "o" / "pseudo.json").records) == 4


def test_an_onnx_teacher_runs_without_torch(tmp_path, nano_onnx):
    write_video(tmp_path / "v.mp4", 6)
    r = run_without_torch(f"""
        import json, sys
        from flowdet.pseudo.label import load_teacher, pseudo_label
        from flowdet.pseudo.track_filter import FilterConfig
        s = pseudo_label(load_teacher({str(nano_onnx)!r}, threads=1, tta="flip"), [{str(tmp_path / "v.mp4")!r}],
                         {str(tmp_path / "o")!r}, FilterConfig(low=0.4, ignore_above=0.45),
                         score_against={str(tmp_path / "v.json")!r})
        print(json.dumps([s["totals"]["frames"], sorted(m for m in sys.modules if m.split(".")[0] == "torch")]))
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [6, []]


def test_stride_labels_every_nth_frame(tmp_path):
    s = _run(tmp_path, stride=2)
    assert s["totals"]["frames"] == 15 and s["score"]["images"] == 15
