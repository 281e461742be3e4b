"""Pretraining config: YAML → dataclasses (``flowdet.config.load_config(PretrainConfig, ...)``).

Scale convention: every frame is first resized so its long side is ``data.frame_size`` — the size
the detector letterboxes to — so a ``patch`` of 64 px here is 64 px of the detector's input, where
FloW/Grogol objects are ~10–20 px. Crops are then resized to ``method.crop`` for the network.
Network input follows the detector contract: BGR, float 0–255, no mean/std.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flowdet.config import ConfigError

EXCLUDE_ACTIONS = ("refuse", "drop")
PATCH_LOSSES = ("cosine", "infonce")
LEVELS = ("dark3", "dark4", "dark5")


@dataclass
class ModelConfig:
    size: str = "nano"  # nano | tiny | s | m — the detector's backbone preset


@dataclass
class DataConfig:
    frames: list[str] = field(default_factory=list)  # folders, manifest.jsonl, .txt lists, COCO json (images only)
    ann: str = ""  # center-loss: labelled COCO json
    images: str = ""  # center-loss: its images folder ("" = next to the json)
    frame_size: int = 640  # long side frames are resized to (the detector's input scale)
    cache: bool = True  # keep resized frames in memory (≈0.7 MB per 640×360 frame)
    num_workers: int = 0  # DataLoader workers
    samples_per_frame: int = 1  # dataset length = frames (images for center-loss) × this: more steps per epoch
    exclude: list[str] = field(default_factory=list)  # val/test sets (COCO json, folders, lists): no frame may be one of them
    exclude_action: str = "refuse"  # refuse: stop (exit 2) if any frame is an excluded image; drop: leave those out
    exclude_near: bool = True  # also catch near-duplicates (the same picture at another size / JPEG quality)


@dataclass
class AugConfig:
    color_p: float = 0.8  # probability of colour jitter (per crop)
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.05  # fraction of the hue circle
    gray_p: float = 0.2
    blur_p: float = 0.2  # Gaussian blur (BYOL / Self-EMD views only)
    flip_p: float = 0.5


@dataclass
class MethodConfig:
    """All method knobs; each is read only by the methods named in its comment."""

    name: str = "patch-contrast"  # a registered method (flowdet/pretrain/methods/): patch-contrast | center-loss | self-emd | byol | insloc
    crop: int = 64  # [all] side in px of each network input crop
    patch: int = 64  # [patch-contrast, center-loss] patch side in frame px (detector scale)
    # embedding head [patch-contrast, center-loss]: dark5 → conv3×3 ×3 → adaptive avg-pool → flatten
    head_channels: int = 128
    embed_channels: int = 32
    embed_pool: int = 2  # embedding dim = embed_channels · embed_pool²
    # patch-contrast
    loss: str = "cosine"  # cosine: −cos(a,p) + cos(a,n) (the study); infonce: temperature-scaled
    temperature: float = 0.1  # [patch-contrast infonce, insloc] InfoNCE temperature
    positives: int = 4  # edge neighbours of the anchor used as positives (1–4)
    negatives: int = 4  # distant patches of the same frame (other frames in the batch add more)
    min_neg_dist: float = 2.0  # a same-frame negative's centre is ≥ this many patch sides from the anchor
    batch_negatives: bool = True  # also contrast against every patch of the other frames in the batch
    # center-loss
    scale_jitter: list[float] = field(default_factory=lambda: [0.8, 1.2])  # positive patch side × U(a, b)
    pos_per_image: int = 4
    neg_per_image: int = 4
    center_weight: float = 0.01  # λ of the center loss
    center_alpha: float = 0.5  # centre update rate (Wen et al.'s α)
    val_fraction: float = 0.2  # held-out IMAGES (not patches) for the fg/bg accuracy
    # byol / self-emd
    view_scale: list[float] = field(default_factory=lambda: [0.6, 1.6])  # view side / crop, in frame px
    view_shift: float = 0.5  # max centre offset between the two views, × view side (keeps them overlapping)
    small_views: int = 2  # extra smaller-scale views (online branch only)
    small_crop: int = 32  # their side in px
    small_scale: list[float] = field(default_factory=lambda: [0.3, 0.6])  # their side / a large view's side
    proj_dim: int = 128
    hidden_dim: int = 512
    momentum: float = 0.99  # target EMA momentum at step 0; rises to 1 by cosine
    vector_weight: float = 0.5  # [self-emd] weight of the global-vector BYOL term
    levels: list[str] = field(default_factory=lambda: ["dark4", "dark5"])  # [self-emd] dense levels
    grid: int = 4  # [self-emd] maps avg-pooled to ≤ grid×grid local features (N ≤ 16: Sinkhorn stays cheap)
    spc: bool = True  # [self-emd] spatial-pyramid crops of the online map
    spc_min: float = 0.5  # [self-emd] smallest SPC window, fraction of the grid side
    sinkhorn_eps: float = 0.05
    sinkhorn_iters: int = 10
    weight_eps: float = 1e-3  # [self-emd] added to the normalised marginal weights
    # insloc (instance localization): `instances` crops of a frame pasted into two other frames' windows
    # (side `crop`, detector scale) at `paste_scale` px, RoIAlign-pooled from `roi_levels`, InfoNCE (`temperature`)
    instances: int = 4  # [insloc] pasted crops per composite (each one a positive pair; the rest of the batch negatives)
    paste_scale: list[float] = field(default_factory=lambda: [8.0, 32.0])  # [insloc] pasted side in detector px (log-uniform)
    paste_aspect: float = 1.5  # [insloc] max aspect ratio of a pasted crop (w/h in [1/a, a])
    source_scale: list[float] = field(default_factory=lambda: [1.0, 3.0])  # [insloc] crop side in the source frame / pasted side
    box_jitter: float = 0.1  # [insloc] RoI corners moved by up to this × box side (InsLoc's box augmentation)
    roi_levels: list[str] = field(default_factory=lambda: ["dark3", "dark4"])  # [insloc] maps the boxes are pooled from
    roi_size: int = 2  # [insloc] RoIAlign output bins per side


@dataclass
class TrainConfig:
    epochs: int = 10
    batch: int = 16  # frames (or patch pairs) per step, per process
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.5
    min_lr_ratio: float = 0.05
    grad_clip: float = 0.0  # 0 = off
    amp: bool = True  # CUDA only
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0
    threads: int = 0  # torch CPU threads (0 = torch default)
    out: str = "runs/pretrain"
    resume: bool = False
    max_steps: int = 0  # cap on steps per epoch (0 = the whole dataset)


@dataclass
class PretrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def method_preset(method: str) -> str | None:
    """configs/pretrain_<method>.yaml (each method's tuned defaults), or None when there is none."""
    from flowdet.config import CONFIG_DIR

    preset = CONFIG_DIR / f"pretrain_{method.replace('-', '_')}.yaml"
    return str(preset) if preset.is_file() else None


def method_defaults(method: str) -> PretrainConfig:
    """What `flowdet pretrain --method X` starts from without --config: its preset over the defaults
    (no import of the method: ``--help`` states these for every method)."""
    from flowdet.config import load_config

    return load_config(PretrainConfig, method_preset(method), [f"method.name={method}"])


def validate(cfg: PretrainConfig) -> PretrainConfig:
    """Cross-field checks; each error names the key."""
    m, t, d = cfg.method, cfg.train, cfg.data

    def need(ok: bool, key: str, msg: str) -> None:
        if not ok:
            raise ConfigError(f"'{key}': {msg}")

    from flowdet.models.sizes import MODEL_SIZES

    need(cfg.model.size in MODEL_SIZES, "model.size", f"unknown size {cfg.model.size!r} ({', '.join(MODEL_SIZES)})")
    from flowdet.pretrain.registry import get_method

    spec = get_method(m.name)  # an unknown name: one line naming method.name and the choices
    need(m.loss in PATCH_LOSSES, "method.loss", f"unknown loss {m.loss!r} (choose from {', '.join(PATCH_LOSSES)})")
    need(m.crop >= 32 and m.crop % 32 == 0, "method.crop", f"must be a multiple of 32 ≥ 32, got {m.crop}")
    need(m.small_crop >= 32 and m.small_crop % 32 == 0, "method.small_crop",
         f"must be a multiple of 32, got {m.small_crop}")
    need(m.patch >= 8, "method.patch", f"must be ≥ 8 px, got {m.patch}")
    need(m.temperature > 0, "method.temperature", "must be > 0")
    need(1 <= m.positives <= 4, "method.positives", "must be 1–4 (edge neighbours)")
    need(m.negatives >= 0, "method.negatives", "must be ≥ 0")
    need(len(m.scale_jitter) == 2 and 0 < m.scale_jitter[0] <= m.scale_jitter[1], "method.scale_jitter",
         "needs [lo, hi]")
    need(len(m.view_scale) == 2 and 0 < m.view_scale[0] <= m.view_scale[1], "method.view_scale", "needs [lo, hi]")
    need(len(m.small_scale) == 2 and 0 < m.small_scale[0] <= m.small_scale[1] <= 1, "method.small_scale",
         "needs [lo, hi] within (0, 1]")
    need(0 < m.val_fraction < 1, "method.val_fraction", "must be in (0, 1)")
    need(0 <= m.momentum < 1, "method.momentum", "must be in [0, 1)")
    need(bool(m.levels) and all(lv in LEVELS for lv in m.levels), "method.levels", f"choose from {', '.join(LEVELS)}")
    need(m.grid >= 2, "method.grid", "must be ≥ 2")
    need(m.instances >= 1, "method.instances", "must be ≥ 1")
    need(len(m.paste_scale) == 2 and 4 <= m.paste_scale[0] <= m.paste_scale[1], "method.paste_scale",
         f"needs [lo, hi] with 4 ≤ lo ≤ hi, got {m.paste_scale}")
    need(m.paste_aspect >= 1, "method.paste_aspect", "must be ≥ 1")
    need(len(m.source_scale) == 2 and 0 < m.source_scale[0] <= m.source_scale[1], "method.source_scale",
         "needs [lo, hi]")
    need(0 <= m.box_jitter < 0.5, "method.box_jitter", "must be in [0, 0.5)")
    need(bool(m.roi_levels) and all(lv in LEVELS for lv in m.roi_levels), "method.roi_levels",
         f"choose from {', '.join(LEVELS)}")
    need(m.roi_size >= 1, "method.roi_size", "must be ≥ 1")
    need(d.exclude_action in EXCLUDE_ACTIONS, "data.exclude_action", f"choose from {', '.join(EXCLUDE_ACTIONS)}")
    need(0 < m.spc_min < 1, "method.spc_min", "must be in (0, 1)")
    need(m.sinkhorn_eps > 0 and m.sinkhorn_iters >= 1, "method.sinkhorn_eps", "eps > 0 and iters ≥ 1")
    need(d.frame_size >= 64, "data.frame_size", "must be ≥ 64")
    need(d.samples_per_frame >= 1, "data.samples_per_frame", "must be ≥ 1")
    need(t.epochs >= 1, "train.epochs", "must be ≥ 1")
    need(t.batch >= 2, "train.batch", "must be ≥ 2 (batch statistics and in-batch negatives)")
    need(t.optimizer in ("adamw", "sgd"), "train.optimizer", "adamw or sgd")
    need(t.lr > 0, "train.lr", "must be > 0")
    need(t.lr <= 10 and t.weight_decay >= 0 and t.warmup_epochs >= 0 and t.grad_clip >= 0, "train.lr",
         "lr must be <= 10; weight_decay, warmup_epochs, grad_clip >= 0")
    need(0 <= t.min_lr_ratio <= 1, "train.min_lr_ratio", "must be in [0, 1]")
    need(t.threads >= 0 and t.max_steps >= 0 and d.num_workers >= 0, "train.threads",
         "train.threads, train.max_steps and data.num_workers must be >= 0")
    need(d.frame_size <= 8192 and m.crop <= 8192, "data.frame_size", "frame_size and method.crop must be <= 8192")
    if spec.inputs == "ann":
        need(bool(d.ann), "data.ann", f"{m.name} needs a labelled COCO json (--ann)")
    else:
        need(bool(d.frames), "data.frames", f"{m.name} needs frames (--frames DIR or manifest.jsonl)")
    if spec.check is not None:
        spec.check(cfg, need)
    return cfg
