"""Detection training config: YAML (configs/yolox_*.yaml) → these dataclasses via flowdet.config."""
from __future__ import annotations

from dataclasses import dataclass, field

from flowdet.config import ConfigError
from flowdet.core.defaults import NWD_CONSTANT
from flowdet.core.size import valid_side
from flowdet.core.validate import MAX_EPOCHS
from flowdet.data.transforms import AugmentConfig
from flowdet.models.sizes import MODEL_SIZES

AUTO = "auto"  # model.size / train.img_size chosen from the training data (flowdet.detect.auto_input)
IOU_LOSSES = ("iou", "giou", "ciou")
OPTIMIZERS = ("sgd", "adamw")


@dataclass
class DataSection:
    train: str = ""  # COCO json
    images: str = ""  # image folder of the training json; empty → <json dir>/images or the json's dir
    val: str = ""  # COCO json; empty → no validation (best.pt = last epoch)
    val_images: str = ""  # empty → same as images
    cache: bool = False  # decode every image once into RAM (small sets, benchmarks)
    # `flowdet pseudo-label` output (its pseudo.json, or the folder) whose images, boxes and ignore regions
    # join the training set (--pseudo; flowdet.detect.train_pseudo); recorded as the json paths used.
    pseudo: list[str] = field(default_factory=list)

    def val_source(self) -> tuple[str, str] | None:
        """(annotations, images folder or "") the trainer validates on: ``val`` (its images:
        ``val_images``, else ``images``), else a YOLO data.yaml's own val split; None without one.
        The one rule for the trainer and for export's parity frames (flowdet.export.parity_data)."""
        from flowdet.data.formats import has_split

        if self.val:
            return self.val, self.val_images or self.images
        if self.train and has_split(self.train, "val"):
            return self.train, ""
        return None


@dataclass
class ModelSection:
    # auto: nano-d, or the --backbone's own size (flowdet.detect.auto_input has the measured rule)
    size: str = "auto"
    backbone: str = ""  # backbone.pt from `flowdet pretrain`
    # Add a stride-4 level (P2): objects under ~8 px get anchors at their own scale; costs FLOPs
    # (the stride-4 head runs on H/4 × W/4 cells) — docs/benchmarks.md has the latency.
    p2: bool = False


@dataclass
class TrainSection:
    epochs: int = 300
    batch: int = 8  # total over all DDP ranks
    # Input size: auto, 640 (square) or "960x544" (W×H, multiples of 32). auto = the training frames'
    # own aspect at the size's measured pixel budget (832x480 for 16:9 with nano-d; flowdet.detect.auto_input).
    # A 16:9 frame letterboxed to a square spends 44% of the compute on padding.
    img_size: str = "auto"
    # sgd: YOLOX's (nesterov, momentum below). adamw (betas = (momentum, 0.999)): ultralytics' choice
    # for short runs, at lr ≈ 0.002; on Grogol at 6 epochs it scored below sgd lr 0.01 (docs/benchmarks.md).
    optimizer: str = "sgd"
    lr: float = 0.0  # 0 → lr_per_img × max(batch, lr_ref_batch)
    lr_per_img: float = 0.01 / 64
    # Batches below this get the lr of this batch (0.01), above it lr scales linearly (YOLOX). Pure
    # linear scaling gave 0.00125 at batch 8 and cost two thirds of the AP on Grogol at 30 epochs;
    # ultralytics likewise keeps lr0 = 0.01 at any batch. 0 → pure linear scaling.
    lr_ref_batch: int = 64
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    warmup_epochs: float = -1.0  # -1 → auto: min(5, epochs / 15) (YOLOX: 5 of 300)
    warmup_lr: float = 0.0
    min_lr_ratio: float = 0.05
    ema: bool = True
    ema_decay: float = 0.9998
    # Updates over which the EMA decay ramps up to ema_decay: d = ema_decay·(1 − e^(−updates/tau)) (YOLOX
    # and ultralytics: 2000). A 30-epoch run on 288 images at batch 8 is 1080 updates, which never leave
    # the ramp (d ≈ 0.42 at the end: the EMA is the last ~2 steps); tau ≈ iterations/5 averages ~the last
    # 4 epochs instead.
    ema_tau: float = 2000.0
    amp: bool = True  # CUDA only
    channels_last: bool = True  # NHWC memory format for the model and batches (CUDA and CPU)
    grad_clip: float = 0.0  # max grad norm; 0 = off
    # BatchNorm running-stat momentum. YOLOX's 0.03 suits long runs; in short fine-tunes the running
    # stats lag the weights and eval-mode accuracy suffers (raise to ~0.1–0.3 there).
    bn_momentum: float = 0.03
    sync_bn: bool = False  # DDP on CUDA only
    iou_loss: str = "ciou"
    workers: int = 2
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    resume: str = ""  # "" | "auto" (= <out>/last.pt) | path to a checkpoint
    eval_interval: int = 10  # epochs; the last epoch is always evaluated
    progress: bool = True  # tqdm bar on a terminal (rank 0); in a log file, the line below instead
    # Not on a terminal (`train > log`): a line with iteration i/N, it/s and ETA every this many seconds; 0 = every iteration
    log_every_s: float = 30.0


@dataclass
class AssignSection:
    """SimOTA label assignment (flowdet.detect.simota) and the tiny-object terms of the loss."""

    center_radius: float = 2.5  # centre region half-side, in strides
    topk: int = 10  # best IoUs summed for the dynamic k
    # Candidate test: boxes smaller than this (px, input scale) count as this big around their centre,
    # so a 4 px box "contains" the anchors next to it (ultralytics 8.4 enlarges boxes under 16 px). 0 = off.
    min_box_side: float = 0.0
    # Only boxes whose longer side is under this (px) are enlarged by min_box_side; 0 = every box under
    # min_box_side. YOLO26's small-target rule (its paper, §3.3) is min_box_side=16, small_box_below=8.
    small_box_below: float = 0.0
    min_k: int = 1  # lower bound of the dynamic k (tiny boxes have tiny IoUs → k = 1 without it)
    cost: str = "iou"  # iou | nwd: geometry term of the cost, −log IoU or −log NWD (Wang et al. 2021)
    nwd_constant: float = NWD_CONSTANT  # C in NWD = exp(−W2 / C), px (the paper's value for AI-TOD)
    nwd_loss: float = 0.0  # weight of (1 − NWD) added to the box loss; 0 = off
    # Objectness target of a positive: 1 (YOLOX) or the IoU of its prediction (IoU-aware, as VarifocalNet):
    # tiny boxes' positives often have low IoU, and a hard 1 teaches confidence the box does not earn.
    soft_obj: bool = False


ASSIGN_COSTS = ("iou", "nwd")


@dataclass
class SemiSection:
    """Teacher–student training on unlabeled frames (``--unlabeled``; flowdet.detect.semi, flowdet.detect.semi_loss)."""

    # Image folders, mined-frame folders / manifest.jsonl, .txt lists, COCO json (images only) or videos
    # (mined at video_fps into <out>/unlabeled_frames); [] = supervised training only.
    unlabeled: list[str] = field(default_factory=list)
    # Val/test sets (COCO json, folders, lists) that no unlabeled frame or --pseudo image may be (content hash and
    # near-duplicates, as pretrain --exclude): a match stops the run before training.
    exclude: list[str] = field(default_factory=list)
    ratio: int = 1  # unlabeled images per labeled image in each batch
    # Supervised-only epochs before the teacher starts; -1 = auto: max(warm-up, epochs/6) (the teacher
    # must detect something before its scores are targets; Unbiased Teacher's burn-in).
    burn_in_epochs: int = -1
    weight: float = 1.0  # weight of the unlabeled loss in the objective (supervised + weight × unlabeled)
    # Per-step EMA decay of the teacher (its own EMA of the student, started as a copy of it at the end of
    # burn-in); -1 = auto: 1 − 20/U for U post-burn-in steps, within [0.99, 0.9996] (Dense Teacher: 0.9996).
    teacher_decay: float = -1.0
    topk: float = 0.01  # share of anchors, by teacher score, that get class and box targets (Dense Teacher: 1%)
    pseudo_conf: float = 0.5  # teacher score a detection (after NMS) needs to count as a pseudo-box
    # > 0: anchors whose teacher score lies in [obj_ignore_low, pseudo_conf) get no dense objectness term (as
    # ignore regions): objects the teacher is unsure of are otherwise taught as background on the frames being
    # scored (AP 0.208 vs 0.239 without unlabeled frames on the new camera). 0 = off. Unscreened: no run yet.
    obj_ignore_low: float = 0.0
    # > 0: the teacher starts only once it finds, on a probe of unlabeled frames, pseudo-boxes/img ≥ this share
    # of the labeled set's boxes/img; until then the burn-in goes on, one epoch at a time, up to half the epochs.
    # Off by default: on Grogol's new camera (seed 0) a teacher made after the fixed 5-epoch burn-in found
    # 0.0–0.2 pseudo-boxes/img (labels: 23.6) yet the run scored AP 0.153 at epoch 10; with the gate at 0.1 the
    # teacher started one epoch later with 3.3/img and the run scored 0.115 at epoch 10 (docs/benchmarks.md).
    teacher_gate: float = 0.0
    video_fps: float = 1.0  # frames per second of video time taken from a video source
    blur_prob: float = 0.5  # student view: Gaussian blur (sigma 0.1–2 px) probability
    noise_std: float = 8.0  # student view: Gaussian pixel noise, std drawn up to this (0–255 scale); 0 = off
    cutout: int = 2  # student view: up to this many grey patches (cutout); 0 = off
    cutout_area: float = 0.01  # student view: largest share of the image one cutout patch covers


@dataclass
class EvalSection:
    conf: float = 0.001
    iou: float = 0.65  # at most 1000 boxes per image, as YOLOX (flowdet.core.postprocess)
    batch: int = 8


@dataclass
class DetectConfig:
    out: str = "runs/train"
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainSection = field(default_factory=TrainSection)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    assign: AssignSection = field(default_factory=AssignSection)
    eval: EvalSection = field(default_factory=EvalSection)
    semi: SemiSection = field(default_factory=SemiSection)

    def base_lr(self) -> float:
        t = self.train
        return t.lr if t.lr > 0 else t.lr_per_img * max(t.batch, t.lr_ref_batch)


def resolve_schedule(cfg: DetectConfig) -> tuple[DetectConfig, list[str]]:
    """Concrete warm-up / no-aug epochs for this run, and a note for each value that was not taken as given.

    auto (-1): warm-up min(5, epochs/15), no-aug min(15, round(epochs/6)) — YOLOX's 5 and 15 of 300,
    and 2 / 5 of 30. Given values that leave no epoch of augmented training after warm-up
    (warm-up + no-aug ≥ epochs) are scaled down to about half the run, in proportion (keeping at
    least one no-aug epoch if any was asked for), and said."""
    import dataclasses

    t, a, notes = cfg.train, cfg.augment, []
    warm = min(5.0, t.epochs / 15) if t.warmup_epochs < 0 else float(t.warmup_epochs)
    no_aug = min(15, round(t.epochs / 6)) if a.no_aug_epochs < 0 else int(a.no_aug_epochs)
    if t.warmup_epochs >= 0 and a.no_aug_epochs >= 0 and warm + no_aug >= t.epochs and warm + no_aug > 0:
        f = (t.epochs / 2) / (warm + no_aug)
        new_no_aug = max(1 if no_aug else 0, int(no_aug * f))  # a no-aug epoch asked for stays (L1 phase)
        new_warm = round(min(warm * f, max(0, t.epochs - new_no_aug) / 2), 2)
        notes.append(f"warm-up {warm:g} + no-aug {no_aug} epochs ≥ {t.epochs} epochs: scaled to "
                     f"warm-up {new_warm:g}, no-aug {new_no_aug} (set train.epochs higher to keep them)")
        warm, no_aug = new_warm, new_no_aug
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(t, warmup_epochs=warm),
                              augment=dataclasses.replace(a, no_aug_epochs=no_aug))
    return cfg, notes


def validate(cfg: DetectConfig) -> DetectConfig:
    """Check values a YAML can get wrong; errors name the key."""
    t, a = cfg.train, cfg.augment
    checks = [
        (bool(cfg.data.train), "data.train: a training COCO json is required (--data)"),
        (cfg.model.size in MODEL_SIZES or cfg.model.size == AUTO,
         f"model.size: '{cfg.model.size}' is not one of auto, {', '.join(MODEL_SIZES)}"),
        (1 <= t.epochs <= MAX_EPOCHS, f"train.epochs: must be in [1, {MAX_EPOCHS}], got {t.epochs}"),
        (t.ema_tau > 0, f"train.ema_tau: must be > 0, got {t.ema_tau}"),
        (t.batch >= 1, f"train.batch: must be >= 1, got {t.batch}"),
        (t.optimizer in OPTIMIZERS, f"train.optimizer: '{t.optimizer}' is not one of {', '.join(OPTIMIZERS)}"),
        (t.iou_loss in IOU_LOSSES, f"train.iou_loss: '{t.iou_loss}' is not one of {', '.join(IOU_LOSSES)}"),
        (t.workers >= 0, f"train.workers: must be >= 0, got {t.workers}"),
        (t.seed >= 0, f"train.seed: must be >= 0, got {t.seed}"),
        (t.eval_interval >= 1, f"train.eval_interval: must be >= 1, got {t.eval_interval}"),
        (t.log_every_s >= 0, f"train.log_every_s: must be >= 0 seconds, got {t.log_every_s}"),
        (0 < t.ema_decay < 1, f"train.ema_decay: must be in (0, 1), got {t.ema_decay}"),
        (0 < t.bn_momentum <= 1, f"train.bn_momentum: must be in (0, 1], got {t.bn_momentum}"),
        (a.no_aug_epochs >= -1, f"augment.no_aug_epochs: must be >= 0 (or -1 = auto), got {a.no_aug_epochs}"),
        (t.warmup_epochs >= -1, f"train.warmup_epochs: must be >= 0 (or -1 = auto), got {t.warmup_epochs}"),
        (t.lr_ref_batch >= 0, f"train.lr_ref_batch: must be >= 0, got {t.lr_ref_batch}"),
        (cfg.assign.center_radius > 0, f"assign.center_radius: must be > 0, got {cfg.assign.center_radius}"),
        (cfg.assign.topk >= 1, f"assign.topk: must be >= 1, got {cfg.assign.topk}"),
        (cfg.assign.min_k >= 1, f"assign.min_k: must be >= 1, got {cfg.assign.min_k}"),
        (cfg.assign.min_box_side >= 0, f"assign.min_box_side: must be >= 0, got {cfg.assign.min_box_side}"),
        (cfg.assign.small_box_below >= 0, f"assign.small_box_below: must be >= 0, got {cfg.assign.small_box_below}"),
        (cfg.assign.cost in ASSIGN_COSTS, f"assign.cost: '{cfg.assign.cost}' is not one of {', '.join(ASSIGN_COSTS)}"),
        (cfg.assign.nwd_constant > 0, f"assign.nwd_constant: must be > 0, got {cfg.assign.nwd_constant}"),
        (cfg.assign.nwd_loss >= 0, f"assign.nwd_loss: must be >= 0, got {cfg.assign.nwd_loss}"),
        (len(a.scale) == 2 and 0 < a.scale[0] <= a.scale[1], f"augment.scale: expected [min, max] > 0, got {a.scale}"),
        (len(a.mixup_scale) == 2 and 0 < a.mixup_scale[0] <= a.mixup_scale[1],
         f"augment.mixup_scale: expected [min, max] > 0, got {a.mixup_scale}"),
        (len(a.hsv_gains) == 3, f"augment.hsv_gains: expected 3 numbers, got {a.hsv_gains}"),
        (len(a.multiscale) in (0, 2) and all(valid_side(v) for v in a.multiscale)
         and (not a.multiscale or a.multiscale[0] <= a.multiscale[1]),
         f"augment.multiscale: expected [] or [min, max] multiples of 32, got {a.multiscale}"),
        (a.multiscale_every >= 1, f"augment.multiscale_every: must be >= 1, got {a.multiscale_every}"),
        *copy_paste_checks(a),
        (0 <= t.lr <= 10, f"train.lr: must be in [0, 10] (0 = lr_per_img x batch), got {t.lr}"),
        (0 < t.lr_per_img <= 1, f"train.lr_per_img: must be in (0, 1], got {t.lr_per_img}"),
        (0 <= t.momentum < 1, f"train.momentum: must be in [0, 1), got {t.momentum}"),
        (t.weight_decay >= 0 and t.warmup_lr >= 0 and t.grad_clip >= 0,
         "train.weight_decay/warmup_lr/grad_clip: must be >= 0"),
        (0 <= t.min_lr_ratio <= 1, f"train.min_lr_ratio: must be in [0, 1], got {t.min_lr_ratio}"),
        (0 <= cfg.eval.conf <= 1 and 0 <= cfg.eval.iou <= 1, "eval.conf/eval.iou: must be in [0, 1]"),
        (cfg.eval.batch >= 1, f"eval.batch: must be >= 1, got {cfg.eval.batch}"),
        *semi_checks(cfg.semi),
        (not cfg.semi.exclude or bool(cfg.semi.unlabeled) or bool(cfg.data.pseudo),
         "semi.exclude: only means something with semi.unlabeled (--unlabeled) or data.pseudo (--pseudo)"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
    if str(cfg.train.img_size).strip().lower() != AUTO:
        input_hw(cfg)  # raises InputError naming train.img_size
    return cfg


def copy_paste_checks(a: AugmentConfig) -> list[tuple[bool, str]]:
    return [
        (0 <= a.copy_paste <= 1, f"augment.copy_paste: must be a probability in [0, 1], got {a.copy_paste}"),
        (a.copy_paste_max >= 1, f"augment.copy_paste_max: must be >= 1, got {a.copy_paste_max}"),
        (a.copy_paste_side > 0, f"augment.copy_paste_side: must be > 0 px, got {a.copy_paste_side}"),
        (0 <= a.copy_paste_jitter < 1, f"augment.copy_paste_jitter: must be in [0, 1), got {a.copy_paste_jitter}"),
        (a.copy_paste_bank >= 1, f"augment.copy_paste_bank: must be >= 1, got {a.copy_paste_bank}"),
    ]


def semi_checks(s: SemiSection) -> list[tuple[bool, str]]:
    import math

    return [
        (s.ratio >= 1, f"semi.ratio: must be >= 1, got {s.ratio}"),
        (s.burn_in_epochs >= -1, f"semi.burn_in_epochs: must be >= 0 (or -1 = auto), got {s.burn_in_epochs}"),
        (0 <= s.teacher_gate <= 1, f"semi.teacher_gate: must be in [0, 1], got {s.teacher_gate}"),
        (math.isfinite(s.weight) and s.weight >= 0, f"semi.weight: must be >= 0, got {s.weight}"),
        (s.teacher_decay == -1 or 0 < s.teacher_decay < 1,
         f"semi.teacher_decay: must be in (0, 1) (or -1 = auto), got {s.teacher_decay}"),
        (0 < s.topk <= 1, f"semi.topk: must be in (0, 1], got {s.topk}"),
        (0 < s.pseudo_conf < 1, f"semi.pseudo_conf: must be in (0, 1), got {s.pseudo_conf}"),
        (0 <= s.obj_ignore_low < s.pseudo_conf,
         f"semi.obj_ignore_low: must be in [0, semi.pseudo_conf = {s.pseudo_conf:g}), got {s.obj_ignore_low}"),
        (s.video_fps > 0, f"semi.video_fps: must be > 0, got {s.video_fps}"),
        (0 <= s.blur_prob <= 1, f"semi.blur_prob: must be in [0, 1], got {s.blur_prob}"),
        (0 <= s.noise_std <= 255, f"semi.noise_std: must be in [0, 255], got {s.noise_std}"),
        (s.cutout >= 0, f"semi.cutout: must be >= 0, got {s.cutout}"),
        (0 < s.cutout_area < 1, f"semi.cutout_area: must be in (0, 1), got {s.cutout_area}"),
    ]


def resolve_semi(cfg: DetectConfig, iters_per_epoch: int) -> tuple[int, float]:
    """(burn-in epochs, teacher decay) for this run, the auto values (-1) made concrete.

    Burn-in auto = max(ceil(warm-up), round(epochs/6)), at most epochs − 1: the lr has warmed up and
    the model detects something before the teacher's scores become targets. Teacher decay auto =
    1 − 20/U for U = post-burn-in steps (the teacher averages about the last 1/20 of them: a slower one
    lags a student that still learns fast in a short run), within [0.99, 0.9996]."""
    import math

    s, t = cfg.semi, cfg.train
    warm = max(0.0, float(t.warmup_epochs))
    burn = (min(max(math.ceil(warm), round(t.epochs / 6)), t.epochs - 1) if s.burn_in_epochs < 0
            else int(s.burn_in_epochs))
    steps = max(1, (t.epochs - burn) * iters_per_epoch)
    decay = min(max(1 - 20 / steps, 0.99), 0.9996) if s.teacher_decay < 0 else float(s.teacher_decay)
    return burn, decay


def input_hw(cfg: DetectConfig) -> tuple[int, int]:
    """The training input size (H, W) from ``train.img_size`` (made concrete first if it was auto)."""
    from flowdet.core.size import InputSize

    if str(cfg.train.img_size).strip().lower() == AUTO:
        raise ConfigError("train.img_size: 'auto' is resolved from the training data first (flowdet.detect.auto_input)")
    return InputSize.parse(cfg.train.img_size, "train.img_size")
