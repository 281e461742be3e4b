"""`flowdet convert …`, `flowdet data …`, `flowdet synth`: parsing only (stages in flowdet.data)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from flowdet import log
from flowdet.commands import FPS, SEED, Number

MAX_LISTED = 20  # converters list this many problems, then a count; `data check` lists all


def _show_problems(report, limit: int | None = MAX_LISTED) -> None:
    problems = report.problems if limit is None else report.problems[:limit]
    for p in problems:
        log.warn(str(p))
    if limit is not None and len(report.problems) > limit:
        log.warn(f"… {len(report.problems) - limit} more (run `flowdet data check` to list all)")


def _parse_size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WIDTHxHEIGHT like 1280x720, got {value!r}") from None
    return w, h


def _parse_range(value: str) -> tuple[int, int]:
    try:
        lo, _, hi = value.partition("-")
        out = (int(lo), int(hi or lo))
    except ValueError:
        raise click.BadParameter(f"expected MIN-MAX like 3-12, got {value!r}") from None
    return out


# ------------------------------------------------------------------------------------------ convert

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def convert() -> None:
    """Convert annotations to/from COCO json (flowdet's internal format).

    \b
    Examples:
      flowdet convert voc FloW-Img/training/annotations --images FloW-Img/training/images --out train.json
      flowdet convert yolo mydata/data.yaml --split val --out val.json
      flowdet convert coco2yolo train.json --images imgs/ --out yolo_ds/ --split train
    """


@convert.command("voc")
@click.argument("ann_dir", type=click.Path(file_okay=False))
@click.option("--images", "images_dir", required=True, type=click.Path(file_okay=False), help="Folder of the images.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="COCO json to write.")
@click.option("--labels", type=click.Path(dir_okay=False), default=None,
              help="labels.txt, one class per line → category ids 1..C in that order (default: sorted names found).")
@click.option("--strict", is_flag=True, help="Fail (exit 2) on any problem instead of skipping it.")
def convert_voc(ann_dir: str, images_dir: str, out: str, labels: str | None, strict: bool) -> None:
    """Pascal VOC xml folder → COCO json.

    VOC pixels are 1-based inclusive: x = xmin-1, w = xmax-xmin+1. <difficult> objects are kept
    with "difficult": 1 (iscrowd 0); a missing <size> is read from the image.

    \b
    Example:
      flowdet convert voc Annotations/ --images JPEGImages/ --out train.json --labels labels.txt
    """
    from flowdet.core import validate
    from flowdet.data.voc import read_labels, voc_to_coco

    validate.writable_file(out)
    names = read_labels(labels) if labels else None
    coco, report = voc_to_coco(ann_dir, images_dir, names, progress=True)
    _write_converted(coco, report, out, strict, images_dir,
                     f"classes {[c['name'] for c in coco['categories']]} ({len(report.problems)} problem(s))")


def _write_converted(coco: dict, report, out: str, strict: bool, images_root, detail: str) -> None:
    """Shared tail of every converter: list problems, honour --strict, write atomically (recording
    the images folder the user named as the json's root: flowdet.paths.remember_root), summarise."""
    from flowdet.paths import remember_root
    from flowdet.utils import atomic_write_json

    _show_problems(report)
    report.raise_if(strict)
    atomic_write_json(Path(out), coco)
    remember_root(out, images_root)
    click.echo(f"wrote {out}: {len(coco['images'])} images, {len(coco['annotations'])} boxes; {detail}")


@convert.command("yolo")
@click.argument("data_yaml", type=click.Path())
@click.option("--split", default="train", show_default=True, help="Split key of the yaml (train/val/test).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="COCO json to write.")
@click.option("--strict", is_flag=True, help="Fail (exit 2) on any problem instead of skipping it.")
def convert_yolo(data_yaml: str, split: str, out: str, strict: bool) -> None:
    """Ultralytics YOLO dataset (data yaml), or a LabelImg/CVAT folder with classes.txt → COCO json.

    file_name in the json is relative to the dataset root (the yaml's `path`), printed at the end:
    pass it as --images to other commands.

    \b
    Example:
      flowdet convert yolo datasets/flow/data.yaml --split val --out val.json
    """
    from flowdet.core import validate
    from flowdet.data.yolo import yolo_folder_to_coco, yolo_to_coco

    validate.writable_file(out)

    if Path(data_yaml).is_dir():  # LabelImg / CVAT export: classes.txt (obj.names) + .txt beside each image
        coco, root, report = yolo_folder_to_coco(data_yaml, progress=True)
    else:
        coco, root, report = yolo_to_coco(data_yaml, split, progress=True)
    _write_converted(coco, report, out, strict, root, f"images root (use as --images): {root}")


@convert.command("coco2yolo")
@click.argument("ann_file", type=click.Path(dir_okay=False))
@click.option("--images", "images_dir", default=None, type=click.Path(file_okay=False),
              help="Folder the json's file_names are relative to (default: next to the json).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Dataset folder to write.")
@click.option("--split", default="train", show_default=True,
              help="Split name (a plain name): images/<split>, labels/<split>.")
@click.option("--copy", is_flag=True, help="Copy images instead of hard-linking them.")
@click.option("--strict", is_flag=True, help="Fail (exit 2) on any problem instead of skipping it.")
def convert_coco2yolo(ann_file: str, images_dir: str | None, out_dir: str, split: str, copy: bool, strict: bool) -> None:
    """COCO json → ultralytics YOLO dataset.

    Writes OUT/images/<split>/ (hard links; copies with --copy or across filesystems), OUT/labels/<split>/*.txt
    and OUT/data.yaml. Run once per split into the same --out to build train + val (data.yaml is merged).
    Crowd/difficult (ignore) boxes are left out.

    \b
    Examples:
      flowdet convert coco2yolo train.json --images imgs/ --out yolo_ds/ --split train
      flowdet convert coco2yolo val.json --images imgs/ --out yolo_ds/ --split val
      yolo detect train data=yolo_ds/data.yaml   # an ultralytics baseline
    """
    from flowdet.data.yolo import coco_to_yolo

    yaml_path, report = coco_to_yolo(ann_file, images_dir, out_dir, split, copy=copy, progress=True)
    _show_problems(report)
    report.raise_if(strict)
    n = report.images_total - report.images_skipped if report.images_written is None else report.images_written
    click.echo(f"wrote {yaml_path} ({n} of {report.images_total} images in split '{split}')")


# --------------------------------------------------------------------------------------------- data

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def data() -> None:
    """Inspect a COCO dataset: `stats` (sizes, histograms) and `check` (validator).

    \b
    Examples:
      flowdet data check ../shared/data/grogol/val.json --strict
      flowdet data stats ../shared/data/grogol/val.json --img-size 640 --out runs/stats
    """


@data.command("stats")
@click.argument("ann_file", type=click.Path())
@click.option("--images", "images_dir", default=None, type=click.Path(file_okay=False),
              help="Folder the json's file_names are relative to (default: next to the json).")
@click.option("--img-size", default="640", show_default=True,
              help="Letterbox input size for the 'resized' size buckets: 640 (square) or 960x544 (W×H), as train takes it.")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Write stats.json and box_sizes.png here.")
@click.option("--json", "as_json", is_flag=True, help="Print the stats as json.")
def data_stats(ann_file: str, images_dir: str | None, img_size: str, out_dir: str | None, as_json: bool) -> None:
    """Counts, boxes per image and COCO size buckets, native and after letterboxing to --img-size.

    \b
    Example:
      flowdet data stats runs/synth/annotations.json --img-size 640 --out runs/synth/stats
    """
    from flowdet.core.size import InputSize
    from flowdet.data.stats import dataset_stats

    hw = InputSize.parse(img_size)
    s = dataset_stats(ann_file, images_dir, hw if hw[0] != hw[1] else hw[0], out_dir)
    img_size = hw.to_flag()
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    bpi = s["boxes_per_image"]
    click.echo(f"{ann_file}: {s['images']} images ({s['images_without_boxes']} without boxes), {s['boxes']} boxes "
               f"({s['ignored_boxes']} ignore), classes {s['classes']}")
    click.echo(f"boxes/image: mean {bpi['mean']:.2f}, median {bpi['median']:g}, max {bpi['max']}; "
               f"image sizes {s['image_sizes']}")
    for key, label in (("native", "native"), ("resized", f"at {img_size}")):
        b = s[key]
        click.echo(f"{label:>8}: small {b['small']} ({b['small_share']:.0%}), medium {b['medium']} ({b['medium_share']:.0%}), "
                   f"large {b['large']} ({b['large_share']:.0%}); sqrt(area) median {b['sqrt_area_median']:.1f}px")
    if s["histogram_png"]:
        click.echo(f"wrote {s['histogram_png']} and {Path(s['histogram_png']).with_name('stats.json')}")
    if s["problems"]:
        log.warn(f"{s['problems']} validation problem(s); run `flowdet data check {ann_file}`")


@data.command("check")
@click.argument("ann_file", type=click.Path())
@click.option("--images", "images_dir", default=None, type=click.Path(file_okay=False),
              help="Folder the json's file_names are relative to (default: next to the json).")
@click.option("--strict", is_flag=True, help="Exit 2 when there is any problem (default: warnings, exit 0).")
@click.option("--no-decode", is_flag=True, help="Only check that image files exist (fast; skips size checks).")
@click.option("--split", type=click.Choice(["all", "train", "val", "test"]), default="all", show_default=True,
              help="A YOLO data.yaml: the split to check; all = every split it names (other formats hold one set).")
def data_check(ann_file: str, images_dir: str | None, strict: bool, no_decode: bool, split: str) -> None:
    """Validate a dataset (COCO json, YOLO data.yaml, VOC or YOLO folder) and print every problem.

    Checks: images exist and decode, width/height match the file, boxes finite with w,h > 0 and
    inside the image (clipped otherwise), category and image ids known, ids unique.

    \b
    Examples:
      flowdet data check train.json --images imgs/ --strict
      flowdet data check data.yaml --split val     # a YOLO export's val split only (default: all splits)
    """

    from flowdet.data.formats import describe_source, has_split, load_dataset
    from flowdet.errors import DataError

    if describe_source(ann_file) == "yolo-yaml":
        splits = [s for s in ("train", "val", "test") if has_split(ann_file, s)] if split == "all" else [split]
    else:
        splits = ["train"]  # one set: the split does not apply
    problems = 0
    for name in splits:
        where = f"{ann_file} split {name}" if len(splits) > 1 or split != "all" else str(ann_file)
        ds = load_dataset(ann_file, images_dir, split=name, strict=False, check_images=not no_decode, progress=True)
        _show_problems(ds.report, limit=None)
        click.echo(f"{where}: {ds.report.summary()}" if where != str(ann_file) else ds.report.summary())
        if not ds.records:
            raise DataError(f"no usable image in {where} (images looked for in {ds.images_dir}; pass --images)",
                            path=ann_file)
        problems += len(ds.report.problems)
    if strict and problems:
        raise click.ClickException(f"{ann_file}: {problems} problem(s) (--strict)")


@data.command("split")
@click.argument("ann_file", type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Writes train.json, val.json.")
@click.option("--val", default=0.2, show_default=True, type=Number(0, 1), help="Share of the groups for validation.")
@click.option("--group-by", default="image", show_default=True,
              help="image | folder | video (clip.mp4#N or name_000123.jpg → one scene) | a key of the image "
                   "entries (video_id, location…): one group never lands on both sides.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Same seed → same split.")
def data_split(ann_file: str, out_dir: str, val: float, group_by: str, seed: int) -> None:
    """Split a dataset (any format --data takes) into train.json and val.json.

    \b
    Example:
      flowdet data split labels/data.yaml --out splits/ --group-by video --val 0.2
    """
    from flowdet.data.split import split_dataset

    s = split_dataset(ann_file, out_dir, val=val, group_by=group_by, seed=seed)
    click.echo(f"train: {s['train']['json']} ({s['train']['images']} images, {s['train']['groups']} groups); "
               f"val: {s['val']['json']} ({s['val']['images']} images, {s['val']['groups']} groups)")


# -------------------------------------------------------------------------------------------- synth

@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--images", "num_images", default=100, show_default=True, type=Number(0, 1_000_000, integer=True), help="Number of still images.")
@click.option("--size", default="1280x720", show_default=True, help="Frame size WIDTHxHEIGHT.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Same seed → byte-identical output.")
@click.option("--video", "video_seconds", default=0.0, show_default=True, type=Number(0, 86400),
              help="Also write video.mp4 of this many seconds, with per-frame ground truth.")
@click.option("--fps", default=10.0, show_default=True, type=FPS, help="Video frame rate.")
@click.option("--min-size", default=8.0, show_default=True, type=Number(2, 8192), help="Shortest object length (px).")
@click.option("--max-size", default=30.0, show_default=True, type=Number(2, 8192), help="Longest object length of the bulk (px).")
@click.option("--objects", default="3-12", show_default=True, help="Objects per image, MIN-MAX.")
def synth(out_dir: str, num_images: int, size: str, seed: int, video_seconds: float, fps: float,
          min_size: float, max_size: float, objects: str) -> None:
    """Generate synthetic FloW-like scenes: small floating bottles on procedural water.

    Writes OUT_DIR/images/*.jpg and OUT_DIR/annotations.json (COCO, category 'bottle' id 1); with
    --video also OUT_DIR/video.mp4 and OUT_DIR/video_annotations.json (file_name "video.mp4#000123",
    plus frame_index and track_id fields).

    \b
    Examples:
      flowdet synth runs/synth --images 100 --size 1280x720 --seed 0
      flowdet synth runs/synth_video --images 0 --video 10 --fps 10
    """
    from flowdet.data.synth import SynthConfig, generate

    w, h = _parse_size(size)
    cfg = SynthConfig(num_images=num_images, width=w, height=h, seed=seed, video_seconds=video_seconds, fps=fps,
                      min_size=min_size, max_size=max_size, objects_per_image=_parse_range(objects))
    s = generate(out_dir, cfg, progress=True)
    click.echo(f"wrote {s['images']} images, {s['boxes']} boxes ({s['small_share']:.0%} COCO-small) → {s['annotations']}"
               f" in {s['seconds']:.1f}s")
    if s["video"]:
        click.echo(f"wrote {s['video']} ({s['video_frames']} frames, {s['video_boxes']} boxes) → {s['video_annotations']}")
