"""Detection training config: YAML (configs/yolox_*.yaml) → these dataclasses via flowdet.config."""
from __future__ import annotations

from dataclasses import dataclass, field

from flowdet.config import ConfigError
from flowdet.data.transforms import AugmentConfig

IOU_LOSSES = ("iou", "giou", "ciou")
OPTIMIZERS = ("sgd", "adamw")


@dataclass
class DataSection:
    train: str = ""  # COCO json
    images: str = ""  # image folder of the training json; empty → <json dir>/images or the json's dir
    val: str = ""  # COCO json; empty → no validation (best.pt = last epoch)
    val_images: str = ""  # empty → same as images
    cache: bool = False  # decode every image once into RAM (small sets, benchmarks)


@dataclass
class ModelSection:
    size: str = "nano"
    backbone: str = ""  # backbone.pt from `flowdet pretrain`


@dataclass
class TrainSection:
    epochs: int = 300
    batch: int = 8  # total over all DDP ranks
    img_size: int = 640  # square input, multiple of 32
    # sgd: YOLOX's (nesterov, momentum below). adamw (betas = (momentum, 0.999)): ultralytics' choice
    # for short runs, at lr ≈ 0.002; on Grogol at 6 epochs it scored below sgd lr 0.01 (docs/benchmarks.md).
    optimizer: str = "sgd"
    lr: float = 0.0  # 0 → lr_per_img × batch (YOLOX's linear scaling)
    lr_per_img: float = 0.01 / 64
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    warmup_epochs: float = 5.0
    warmup_lr: float = 0.0
    min_lr_ratio: float = 0.05
    ema: bool = True
    ema_decay: float = 0.9998
    amp: bool = True  # CUDA only
    channels_last: bool = True  # CUDA only
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
    progress: bool = True  # tqdm bar (rank 0)


@dataclass
class EvalSection:
    conf: float = 0.001
    iou: float = 0.65  # at most 1000 boxes per image, as YOLOX (flowdet.ops.postprocess)
    batch: int = 8


@dataclass
class DetectConfig:
    out: str = "runs/train"
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainSection = field(default_factory=TrainSection)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    eval: EvalSection = field(default_factory=EvalSection)

    def base_lr(self) -> float:
        return self.train.lr if self.train.lr > 0 else self.train.lr_per_img * self.train.batch


def validate(cfg: DetectConfig) -> DetectConfig:
    """Check values a YAML can get wrong; errors name the key."""
    from flowdet.models import MODEL_SIZES

    t, a = cfg.train, cfg.augment
    checks = [
        (bool(cfg.data.train), "data.train: a training COCO json is required (--data)"),
        (cfg.model.size in MODEL_SIZES, f"model.size: '{cfg.model.size}' is not one of {', '.join(MODEL_SIZES)}"),
        (t.epochs >= 1, f"train.epochs: must be >= 1, got {t.epochs}"),
        (t.batch >= 1, f"train.batch: must be >= 1, got {t.batch}"),
        (t.img_size >= 32 and t.img_size % 32 == 0, f"train.img_size: must be a multiple of 32, got {t.img_size}"),
        (t.optimizer in OPTIMIZERS, f"train.optimizer: '{t.optimizer}' is not one of {', '.join(OPTIMIZERS)}"),
        (t.iou_loss in IOU_LOSSES, f"train.iou_loss: '{t.iou_loss}' is not one of {', '.join(IOU_LOSSES)}"),
        (t.workers >= 0, f"train.workers: must be >= 0, got {t.workers}"),
        (t.seed >= 0, f"train.seed: must be >= 0, got {t.seed}"),
        (t.eval_interval >= 1, f"train.eval_interval: must be >= 1, got {t.eval_interval}"),
        (0 < t.ema_decay < 1, f"train.ema_decay: must be in (0, 1), got {t.ema_decay}"),
        (0 < t.bn_momentum <= 1, f"train.bn_momentum: must be in (0, 1], got {t.bn_momentum}"),
        (a.no_aug_epochs >= 0, f"augment.no_aug_epochs: must be >= 0, got {a.no_aug_epochs}"),
        (len(a.scale) == 2 and 0 < a.scale[0] <= a.scale[1], f"augment.scale: expected [min, max] > 0, got {a.scale}"),
        (len(a.mixup_scale) == 2 and 0 < a.mixup_scale[0] <= a.mixup_scale[1],
         f"augment.mixup_scale: expected [min, max] > 0, got {a.mixup_scale}"),
        (len(a.hsv_gains) == 3, f"augment.hsv_gains: expected 3 numbers, got {a.hsv_gains}"),
        (len(a.multiscale) in (0, 2) and all(v >= 32 and v % 32 == 0 for v in a.multiscale)
         and (not a.multiscale or a.multiscale[0] <= a.multiscale[1]),
         f"augment.multiscale: expected [] or [min, max] multiples of 32, got {a.multiscale}"),
        (a.multiscale_every >= 1, f"augment.multiscale_every: must be >= 1, got {a.multiscale_every}"),
        (t.img_size <= 8192, f"train.img_size: must be <= 8192, got {t.img_size}"),
        (0 <= t.lr <= 10, f"train.lr: must be in [0, 10] (0 = lr_per_img x batch), got {t.lr}"),
        (0 < t.lr_per_img <= 1, f"train.lr_per_img: must be in (0, 1], got {t.lr_per_img}"),
        (0 <= t.momentum < 1, f"train.momentum: must be in [0, 1), got {t.momentum}"),
        (t.weight_decay >= 0 and t.warmup_epochs >= 0 and t.warmup_lr >= 0 and t.grad_clip >= 0,
         "train.weight_decay/warmup_epochs/warmup_lr/grad_clip: must be >= 0"),
        (0 <= t.min_lr_ratio <= 1, f"train.min_lr_ratio: must be in [0, 1], got {t.min_lr_ratio}"),
        (0 <= cfg.eval.conf <= 1 and 0 <= cfg.eval.iou <= 1, "eval.conf/eval.iou: must be in [0, 1]"),
        (cfg.eval.batch >= 1, f"eval.batch: must be >= 1, got {cfg.eval.batch}"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
    return cfg
