"""Surrogate-gradient BPTT training at one bin width ``dt``."""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .adapt import Deployment, deploy
from .data.events import EventDataset, iter_batches
from .errors import ConfigError
from .evaluate import evaluate
from .model import SNNClassifier


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    rate_reg: float = 1.0  # weight of the mean spike count per neuron and bin, added to the loss
    seed: int = 0
    bin_mode: str = "count"

    def validate(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"train.epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"train.batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"train.val_fraction must be in [0, 1), got {self.val_fraction}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def split_validation(ds: EventDataset, fraction: float, seed: int) -> tuple[EventDataset, EventDataset | None]:
    """Carve a validation set out of the training set (never select on test)."""
    if fraction <= 0:
        return ds, None
    order = np.random.default_rng(seed + 7919).permutation(len(ds))
    n_val = max(1, int(round(fraction * len(ds))))
    return ds.subset(np.sort(order[n_val:]), ds.name), ds.subset(np.sort(order[:n_val]), ds.name + "/val")


def train(model: SNNClassifier, train_ds: EventDataset, dt: float, cfg: TrainConfig = TrainConfig(),
          progress: bool = True, on_epoch=None) -> tuple[Deployment, list[dict]]:
    """Train ``model`` on ``train_ds`` binned at ``dt``; keep the weights with the best validation
    accuracy.  Returns the deployment at ``dt`` and the per-epoch history."""
    cfg.validate()
    seed_everything(cfg.seed)
    fit_ds, val_ds = split_validation(train_ds, cfg.val_fraction, cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    history, best_acc, best_state = [], -1.0, None
    steps = math.ceil(len(fit_ds) / cfg.batch_size)
    bar = tqdm(range(cfg.epochs), desc=f"train dt={dt * 1e3:g}ms", disable=not progress)
    for epoch in bar:
        model.train()
        start, loss_sum, correct, n = time.perf_counter(), 0.0, 0, 0
        for step, (x, y) in enumerate(iter_batches(fit_ds, dt, cfg.batch_size, True, rng, cfg.bin_mode)):
            logits, spikes = model(x, model.step_params(dt), return_spikes=True)
            loss = F.cross_entropy(logits, y)
            if cfg.rate_reg:
                loss = loss + cfg.rate_reg * torch.stack([s.mean() for s in spikes]).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch + 1}, step {step + 1}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            n += len(y)
        sched.step()
        row = {"epoch": epoch + 1, "train_loss": loss_sum / n, "train_accuracy": correct / n,
               "epoch_time_s": time.perf_counter() - start, "steps": steps}
        if val_ds is not None:
            val = evaluate(deploy(model, dt), val_ds, bin_mode=cfg.bin_mode)
            row.update(val_accuracy=val["accuracy"], val_loss=val["loss"], val_rate_hz=val["rate_hz"])
            if val["accuracy"] > best_acc:
                best_acc, best_state = val["accuracy"], copy.deepcopy(model.state_dict())
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{row.get('val_accuracy', float('nan')):.3f}")
        if on_epoch is not None:
            on_epoch(row)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return deploy(model, dt), history


def train_config_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)
