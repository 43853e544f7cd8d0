"""Surrogate-gradient BPTT training at one bin width ``dt``."""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from snnta.core.deployment import Deployment, deploy
from snnta.core.units import parse_duration, per_bin
from snnta.data.events import BIN_MODES, EventDataset, bin_batch, iter_batches
from snnta.errors import CheckpointError, ConfigError
from snnta.run.evaluate import evaluate
from snnta.run.progress import Progress
from snnta.util.runtime import default_threads
from snnta.util.io import save_torch
from snnta.core.model import SNNClassifier


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
    # Options below default to the behaviour before they existed (null in configs/train.yaml = default).
    patience: int | None = None  # early stopping: stop after this many epochs without a better val accuracy
    lr_schedule: str | None = None  # cosine (default, over `epochs`) | constant | plateau (halve on a val plateau)
    lr_patience: int | None = None  # plateau: epochs without a better val accuracy before halving (default 3)
    dt_choices: tuple[float | str, ...] | None = None  # mixed time-step training: a bin width drawn per batch
    event_dropout: float = 0.0  # training batches only: each input event dropped with this probability
    grad_clip: float | None = None  # rescale the gradients to this global L2 norm when it is larger (null: never)
    #: the bin ``rate_reg`` is stated for: at bin ``dt`` the weight is ``rate_reg * rate_reg_dt / dt``, the same
    #: penalty per spike per second at every bin (None: the same weight per bin, a rate penalty that weakens
    #: in Hz as the bin shrinks).  :meth:`rate_reg_at`
    rate_reg_dt: float | str | None = None

    def __post_init__(self):
        if self.dt_choices is not None:  # durations with units ("2ms") -> seconds
            dts = tuple(parse_duration(d, f"train.dt_choices[{i}]") if isinstance(d, str) else float(d)
                        for i, d in enumerate(self.dt_choices))
            object.__setattr__(self, "dt_choices", dts)
        if isinstance(self.rate_reg_dt, str):
            object.__setattr__(self, "rate_reg_dt", parse_duration(self.rate_reg_dt, "train.rate_reg_dt"))

    def rate_reg_at(self, dt: float) -> float:
        """The weight ``w`` of the rate penalty ``w * mean_{b,t,n} s`` at bin ``dt``.  The mean spike count per
        neuron and bin is ``r dt`` for a rate ``r`` in Hz, so ``w = rate_reg * rate_reg_dt / dt`` penalizes
        ``rate_reg * rate_reg_dt * r`` at every bin; without ``rate_reg_dt``, ``w = rate_reg``."""
        return per_bin(self.rate_reg, self.rate_reg_dt, dt)

    def validate(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"train.epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"train.batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"train.val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.bin_mode not in BIN_MODES:
            raise ConfigError(f"train.bin_mode: unknown mode {self.bin_mode!r}; choose one of: {', '.join(BIN_MODES)}")
        if self.rate_reg < 0 or self.weight_decay < 0:
            raise ConfigError("train.rate_reg and train.weight_decay must be >= 0")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"train.patience must be >= 1 or null (no early stopping), got {self.patience}")
        if self.patience is not None and self.val_fraction <= 0:
            raise ConfigError("train.patience needs a validation split: set train.val_fraction > 0")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"train.lr_schedule: unknown schedule {self.lr_schedule!r}; "
                              f"choose one of: {', '.join(s for s in LR_SCHEDULES if s)}")
        if self.lr_schedule == "plateau" and self.val_fraction <= 0:
            raise ConfigError("train.lr_schedule=plateau needs a validation split: set train.val_fraction > 0")
        if self.lr_patience is not None and self.lr_patience < 1:
            raise ConfigError(f"train.lr_patience must be >= 1 or null, got {self.lr_patience}")
        if not 0 <= self.event_dropout < 1:
            raise ConfigError(f"train.event_dropout must be in [0, 1), got {self.event_dropout}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"train.grad_clip must be > 0 or null (no clipping), got {self.grad_clip}")
        if self.rate_reg_dt is not None and not self.rate_reg_dt > 0:
            raise ConfigError(f"train.rate_reg_dt must be a positive duration (e.g. 4ms) or null, got {self.rate_reg_dt}")
        if self.dt_choices is not None and (not self.dt_choices or min(self.dt_choices) <= 0):
            raise ConfigError(f"train.dt_choices: need one or more positive bin widths, got {list(self.dt_choices)}")


#: learning-rate schedules of :class:`TrainConfig` (``None``: cosine)
LR_SCHEDULES = (None, "cosine", "constant", "plateau")


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig):
    """The learning-rate schedule of ``cfg``: cosine annealing ``lr_e = lr/2 (1 + cos(pi e / epochs))``,
    a constant rate, or ``plateau``: ``lr <- lr/2`` whenever the validation accuracy has not improved for
    ``lr_patience`` epochs (stepped with that accuracy)."""
    if cfg.lr_schedule in (None, "cosine"):
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.lr_schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5,
                                                      patience=(cfg.lr_patience or 3) - 1)


def rate_penalty(spikes: list[torch.Tensor], weight: float) -> torch.Tensor:
    """``weight * mean_l mean_{b,t,n} s_l``: the mean spike count per neuron and bin, averaged over the
    hidden layers ``s_l`` (each ``[time, batch, neurons]``)."""
    return weight * torch.stack([s.mean() for s in spikes]).mean()


def clip_gradients(model: torch.nn.Module, max_norm: float | None) -> float:
    """The global L2 norm ``g = sqrt(sum_p |grad_p|^2)`` of the gradients before clipping; when ``max_norm``
    is set and ``g > max_norm``, every gradient is scaled by ``max_norm / g`` (one direction, bounded step:
    the usual guard against the exploding gradients of long back-propagation through time).

    A float32 sum of squares overflows for norms above about 1.8e19; the norm is then recomputed in float64,
    so it stays the true (finite) norm.  A gradient with an infinite or NaN entry has no direction to keep:
    with ``max_norm`` set its step is skipped (every gradient zeroed) and ``inf`` (or NaN) is returned."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return 0.0
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item()
    if not math.isfinite(norm):
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, dtype=torch.float64)
                                                     for g in grads])).item()
    if max_norm is not None and not math.isfinite(norm):
        for g in grads:
            g.zero_()
    elif max_norm is not None and norm > max_norm:
        for g in grads:
            g.mul_(max_norm / norm)
    return norm


def bin_epochs(history: list[dict], fixed_bins: int | None = None) -> float | None:
    """Training work in bin-epochs, ``W = sum over epochs of (bins per training sample)``: an epoch at a
    fixed bin of ``T`` bins per sample counts ``T``, a mixed time-step epoch the mean over its batches.  The
    forward and backward passes scan every bin, so training time is ``W`` times a per-bin cost set by the
    device and the machine's load, and somewhat by ``dt`` (a coarse bin holds more events: up to about twice
    the per-bin cost at 32 ms as at 1 ms on a 2-core CPU).  Rows written before ``bins_per_sample`` was
    recorded count ``fixed_bins``; with ``fixed_bins`` None such a row makes the work unknown (None)."""
    per_epoch = [r.get("bins_per_sample", fixed_bins) for r in history]
    return None if None in per_epoch else float(sum(per_epoch))


def epochs_since_best(history: list[dict]) -> int:
    """Epochs run after the first one with the best validation accuracy (0 without validation)."""
    accs = [r.get("val_accuracy") for r in history]
    if not accs or accs[-1] is None:
        return 0
    best = max(range(len(accs)), key=lambda i: (accs[i], -i))
    return len(accs) - 1 - best


def mixed_batches(ds: EventDataset, dts: tuple[float, ...], batch_size: int, rng: np.random.Generator,
                  mode: str = "count", device: str | torch.device | None = None):
    """Shuffled ``(counts [B, T_b, C], labels [B], dt_b)`` batches, each binned at its own bin width
    ``dt_b`` drawn uniformly from ``dts`` (mixed time-step training, Du et al., ICLR 2025)."""
    order = rng.permutation(len(ds))
    for start in range(0, len(ds), batch_size):
        idx = order[start:start + batch_size]
        dt = float(dts[int(rng.integers(len(dts)))])
        yield bin_batch(ds, idx, dt, mode, device), torch.from_numpy(ds.labels[idx]), dt


def drop_events(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Event dropout on binned input (tonic's ``DropEvent`` after binning): every event is kept independently
    with probability ``1 - p``, so a bin's count ``c`` becomes ``Binomial(c, 1 - p)`` (binary bins: Bernoulli).
    Only the nonzero bins are drawn; ``generator`` (a CPU generator) makes it reproducible."""
    if p <= 0:
        return x
    flat = x.reshape(-1)
    nz = flat.nonzero().squeeze(1)
    counts = flat[nz].to("cpu", torch.float64)
    kept = torch.binomial(counts, torch.full_like(counts, 1.0 - p), generator=generator)
    out = flat.clone()
    out[nz] = kept.to(x.device, x.dtype)
    return out.reshape(x.shape)


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


STATE_FORMAT = "snnta-train-state/1"


def _state(model, opt, sched, rng, epoch, history, best_acc, best_state) -> dict:
    return {"format": STATE_FORMAT, "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "numpy_rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(), "python_rng": random.getstate(), "history": history,
            "best_acc": best_acc, "best_state": best_state}


def load_state(path: Path, device: str | torch.device = "cpu") -> dict:
    """Read a training state written by :func:`train`; a damaged file raises :class:`CheckpointError`."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"training state {path} is unreadable ({type(e).__name__}); "
                              "remove it to restart this run from scratch") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path} is not a snnta training state")
    return state


@default_threads
def train(model: SNNClassifier, train_ds: EventDataset, dt: float, cfg: TrainConfig = TrainConfig(),
          progress: bool = True, on_epoch=None, state_path: str | Path | None = None,
          device: str | torch.device = "cpu") -> tuple[Deployment, list[dict]]:
    """Train ``model`` on ``train_ds`` binned at ``dt``; keep the weights with the best validation
    accuracy.  Returns the deployment at ``dt`` and the per-epoch history.

    With ``state_path``, the full training state (model, optimizer, scheduler, RNG states, epoch,
    history, best-validation weights) is written there atomically after every epoch, and an existing
    state is resumed: an interrupted run continued this way ends with the same weights and metrics as
    an uninterrupted one.  A non-finite loss raises :class:`FloatingPointError` naming the epoch and
    step; the state of the last complete epoch is kept.  ``device`` (``cpu``, ``cuda``) is where the
    model and every batch live.
    """
    cfg.validate()
    seed_everything(cfg.seed)
    fit_ds, val_ds = split_validation(train_ds, cfg.val_fraction, cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = make_scheduler(opt, cfg)
    history, best_acc, best_state, first = [], -1.0, None, 0
    state_path = Path(state_path) if state_path is not None else None
    if state_path is not None and state_path.is_file():
        state = load_state(state_path, device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"].cpu())
        random.setstate(state["python_rng"])
        history, best_acc, best_state, first = state["history"], state["best_acc"], state["best_state"], state["epoch"]
    steps = math.ceil(len(fit_ds) / cfg.batch_size)
    bar = Progress(cfg.epochs, f"train dt={dt * 1e3:g}ms", progress, initial=first, unit="epoch", every_s=0)
    for epoch in range(first, cfg.epochs):
        if cfg.patience is not None and epochs_since_best(history) >= cfg.patience:
            break  # early stop (also when resuming a run that had stopped)
        model.train()
        start, loss_sum, correct, n, grad_norm_max, bins = time.perf_counter(), 0.0, 0, 0, 0.0, 0
        lr = opt.param_groups[0]["lr"]
        if cfg.dt_choices is None:
            batches = ((x, y, dt) for x, y in iter_batches(fit_ds, dt, cfg.batch_size, True, rng, cfg.bin_mode, device))
        else:
            batches = mixed_batches(fit_ds, cfg.dt_choices, cfg.batch_size, rng, cfg.bin_mode, device)
        steps_bar = Progress(steps, f"epoch {epoch + 1}/{cfg.epochs}", progress and steps > 1, unit="batch",
                             leave=False)
        drop_gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)  # per epoch: resumes exactly
        for step, (x, y, dt_b) in enumerate(batches):
            steps_bar.update(1)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if cfg.event_dropout:
                x = drop_events(x, cfg.event_dropout, drop_gen)
            logits, spikes = model(x, model.step_params(dt_b), return_spikes=True)
            loss = F.cross_entropy(logits, y)
            if cfg.rate_reg:
                loss = loss + rate_penalty(spikes, cfg.rate_reg_at(dt_b))
            if not torch.isfinite(loss):
                kept = f"; the state after epoch {epoch} is kept in {state_path}" if state_path and epoch else ""
                raise FloatingPointError(f"non-finite loss at epoch {epoch + 1}, step {step + 1}{kept}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            step_norm = clip_gradients(model, cfg.grad_clip)
            grad_norm_max = max(grad_norm_max, step_norm) if math.isfinite(step_norm) else math.inf
            opt.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            n += len(y)
            bins += len(y) * x.shape[1]
        if cfg.lr_schedule != "plateau":
            sched.step()
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            raise FloatingPointError(f"non-finite parameters after epoch {epoch + 1}")
        row = {"epoch": epoch + 1, "train_loss": loss_sum / n, "train_accuracy": correct / n,
               "epoch_time_s": time.perf_counter() - start, "steps": steps, "lr": lr,
               "grad_norm_max": grad_norm_max if math.isfinite(grad_norm_max) else None,  # null: a step was not finite
               "bins_per_sample": bins / n, "device": str(device)}
        if val_ds is not None:
            val = evaluate(deploy(model, dt), val_ds, bin_mode=cfg.bin_mode)
            row.update(val_accuracy=val["accuracy"], val_loss=val["loss"], val_rate_hz=val["rate_hz"])
            if val["accuracy"] > best_acc:
                best_acc, best_state = val["accuracy"], copy.deepcopy(model.state_dict())
            if cfg.lr_schedule == "plateau":
                sched.step(val["accuracy"])
        history.append(row)
        if state_path is not None:
            save_torch(state_path, _state(model, opt, sched, rng, epoch + 1, history, best_acc, best_state))
        steps_bar.close()
        bar.update(1, loss=f"{row['train_loss']:.3f}", val=f"{row.get('val_accuracy', float('nan')):.3f}")
        if on_epoch is not None:
            on_epoch(row)
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return deploy(model, dt), history

