"""Cochlear front ends: audio -> spike trains ``(times [s], channels)`` over ``n_channels`` channels.

``gammatone`` (the fast default, vectorized across channels, tens of milliseconds per utterance):

1. resample to ``sample_rate`` Hz and normalize to RMS ``level`` (so loudness does not carry the class);
2. pre-emphasis ``y[t] = x[t] - preemph * x[t-1]`` (without it the channels above ~2 kHz stay silent,
   because speech power falls off with frequency);
3. a 4th-order gammatone filterbank with centre frequencies equally spaced on the ERB-rate scale from
   ``fmin`` to ``fmax`` Hz and bandwidths ``1.019 * ERB(f)`` (Glasberg & Moore 1990), applied as one FFT
   convolution for all channels at once; each filter has unit gain at its centre frequency;
4. inner hair cell: half-wave rectification, a lowpass by block averaging to ``env_rate`` Hz, and
   power-law compression ``c = d ** compression``;
5. spiking: rate ``r = max_rate * clip((c - threshold) / (saturation - threshold), 0, 1)``, with the
   dead-time (absolute refractory period ``refractory`` s) correction ``r / (1 + r * refractory)``; each
   channel fires when the integral of its rate, started at a random phase in ``[0, 1)``, crosses an
   integer (an integrate-and-fire neuron, vectorized as a cumulative sum).  Since ``r < 1/refractory``,
   two spikes of one channel are always more than ``refractory`` apart.  Spike times are interpolated
   within the envelope sample, so they are continuous.

Channel 0 is the lowest frequency.  ``lauscher`` is the chain used to make SHD (Cramer et al. 2020:
basilar membrane, Meddis hair cell, bushy cells); it is optional and slow (about a minute per utterance).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from math import gcd

import numpy as np

from snnta.util.checks import check_keys
from snnta.errors import ConfigError, DataError

FRONTENDS = ("gammatone", "lauscher")


@dataclass(frozen=True)
class GammatoneConfig:
    n_channels: int = 700
    sample_rate: int = 16000  # Hz, filterbank rate
    fmin: float = 50.0  # Hz, lowest centre frequency
    fmax: float = 7000.0  # Hz, highest centre frequency
    level: float = 0.1  # RMS of the normalized waveform
    preemph: float = 0.97
    env_rate: int = 8000  # Hz, hair-cell envelope rate (sample_rate must be a multiple)
    compression: float = 0.3  # exponent of the power-law compression
    threshold: float = 0.10  # compressed drive at which a channel starts firing
    saturation: float = 0.60  # compressed drive at which it reaches max_rate
    max_rate: float = 400.0  # Hz, before the refractory correction (calibrated: spike counts as lauscher)
    refractory: float = 0.001  # s, absolute refractory period
    ir_length: float = 0.1  # s, length of the gammatone impulse responses

    def to_dict(self) -> dict:
        return asdict(self)


def erb(f: np.ndarray) -> np.ndarray:
    """Equivalent rectangular bandwidth (Hz) of the auditory filter at frequency ``f`` (Hz)."""
    return 24.7 * (4.37e-3 * np.asarray(f, dtype=np.float64) + 1.0)


def erb_space(fmin: float, fmax: float, n: int) -> np.ndarray:
    """``n`` frequencies (Hz) from ``fmin`` to ``fmax``, equally spaced on the ERB-rate scale."""
    to_rate = lambda f: 21.4 * np.log10(4.37e-3 * f + 1.0)  # noqa: E731
    rates = np.linspace(to_rate(fmin), to_rate(fmax), n)
    return (10 ** (rates / 21.4) - 1.0) / 4.37e-3


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling of a 1-D signal from ``sr_in`` to ``sr_out`` Hz."""
    if sr_in == sr_out:
        return np.asarray(audio, dtype=np.float64)
    from scipy.signal import resample_poly

    g = gcd(int(sr_in), int(sr_out))
    return resample_poly(np.asarray(audio, dtype=np.float64), int(sr_out) // g, int(sr_in) // g)


@functools.lru_cache(maxsize=8)
def _filterbank(cfg: GammatoneConfig, nfft: int) -> tuple[np.ndarray, np.ndarray]:
    """Frequency responses ``[n_channels, nfft // 2 + 1]`` (complex64) of the pre-emphasized gammatone
    filters for FFT length ``nfft``, and the centre frequencies (Hz)."""
    from scipy import fft

    fs = cfg.sample_rate
    fc = erb_space(cfg.fmin, cfg.fmax, cfg.n_channels)
    b = 1.019 * erb(fc)
    t = np.arange(int(round(cfg.ir_length * fs))) / fs
    ir = t ** 3 * np.exp(-2 * np.pi * b[:, None] * t) * np.cos(2 * np.pi * fc[:, None] * t)
    H = fft.rfft(ir, nfft, axis=1)
    # unit gain at each centre frequency
    w = np.exp(-2j * np.pi * fc[:, None] * t)
    gain = np.abs((ir * w).sum(axis=1))
    H /= gain[:, None]
    freqs = np.arange(nfft // 2 + 1) * fs / nfft
    H *= 1.0 - cfg.preemph * np.exp(-2j * np.pi * freqs / fs)
    return H.astype(np.complex64), fc


def center_frequencies(cfg: GammatoneConfig = GammatoneConfig()) -> np.ndarray:
    """Centre frequency (Hz) of each channel, channel 0 lowest."""
    return erb_space(cfg.fmin, cfg.fmax, cfg.n_channels)


def gammatone_drive(audio: np.ndarray, sr: int, cfg: GammatoneConfig = GammatoneConfig()) -> np.ndarray:
    """Compressed hair-cell drive ``c [n_channels, T_env]`` at ``cfg.env_rate`` Hz (steps 1-4 above)."""
    from scipy import fft

    if cfg.sample_rate % cfg.env_rate:
        raise ConfigError(f"frontend: sample_rate {cfg.sample_rate} must be a multiple of env_rate {cfg.env_rate}")
    x = resample(audio, sr, cfg.sample_rate)
    rms = np.sqrt(np.mean(x ** 2)) if len(x) else 0.0
    if rms > 0:
        x = x * (cfg.level / rms)
    n = len(x)
    nfft = fft.next_fast_len(n + int(round(cfg.ir_length * cfg.sample_rate)), real=True)
    H, _ = _filterbank(cfg, nfft)
    X = fft.rfft(x.astype(np.float32), nfft)
    y = fft.irfft(H * X[None, :], nfft, axis=1)[:, :n]
    np.maximum(y, 0, out=y)
    k = cfg.sample_rate // cfg.env_rate
    m = n // k
    d = y[:, 0:m * k:k].copy()
    for j in range(1, k):  # block average, cheaper than reshape().mean() for small k
        d += y[:, j:m * k:k]
    d *= 1.0 / k
    return d ** cfg.compression


def drive_to_spikes(c: np.ndarray, cfg: GammatoneConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Integrate-and-fire spikes from the drive ``c [C, T]`` (step 5): ``(times s, channels)`` sorted by time."""
    span = max(cfg.saturation - cfg.threshold, 1e-12)
    r = cfg.max_rate * np.clip((c - cfg.threshold) / span, 0.0, 1.0)
    r = r / (1.0 + r * cfg.refractory)
    inc = r / cfg.env_rate  # spikes per envelope sample, < 1
    phase = np.cumsum(inc, axis=1, dtype=np.float64) + rng.uniform(0, 1, (c.shape[0], 1))
    count = np.floor(phase)
    prev = np.concatenate([np.floor(phase[:, :1] - inc[:, :1]), count[:, :-1]], axis=1)
    ch, i = np.nonzero(count > prev)
    # the crossing happened a fraction (phase - count) / inc of a sample before sample i's end
    frac = (phase[ch, i] - count[ch, i]) / np.maximum(inc[ch, i], 1e-12)
    times = (i + 1 - frac) / cfg.env_rate
    order = np.lexsort((ch, times))
    return np.clip(times[order], 0.0, None), ch[order]


def gammatone_spikes(audio: np.ndarray, sr: int, cfg: GammatoneConfig = GammatoneConfig(),
                     rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The fast front end: ``audio`` at ``sr`` Hz -> ``(times [s] float64, channels int64)``."""
    rng = rng if rng is not None else np.random.default_rng(0)
    return drive_to_spikes(gammatone_drive(audio, sr, cfg), cfg, rng)


def lauscher_spikes(audio: np.ndarray, sr: int, n_channels: int = 700) -> tuple[np.ndarray, np.ndarray]:
    """The SHD chain (PyPI ``lauscher``): ``(times [s], channels)`` sorted by time.  Slow (~1 min)."""
    try:
        from lauscher.audiowaves import MonoAudioWave
        from lauscher.transformations.wave2spike import Wave2Spike
    except ImportError as e:
        raise DataError("frontend=lauscher needs the lauscher package: pip install lauscher") from e
    train = MonoAudioWave(np.asarray(audio, dtype=np.float64), int(sr)).transform(Wave2Spike(num_channels=n_channels))
    times = np.asarray(train.spike_times, dtype=np.float64)
    units = np.asarray(train.spike_labels).astype(np.int64)
    order = np.lexsort((units, times))
    return times[order], units[order]


def make_frontend(name: str = "gammatone", n_channels: int = 700, **options):
    """A function ``(audio, sr, rng) -> (times [s], channels)`` for front end ``name``."""
    if name == "gammatone":
        check_keys(options, GammatoneConfig.__dataclass_fields__, "frontend gammatone", "option")
        cfg = GammatoneConfig(n_channels=n_channels, **options)
        return functools.partial(_gammatone_call, cfg)
    if name == "lauscher":
        if options:
            raise ConfigError(f"frontend lauscher takes no options, got {', '.join(sorted(options))}")
        return functools.partial(_lauscher_call, n_channels)
    raise ConfigError(f"unknown frontend {name!r}; choose one of: {', '.join(FRONTENDS)}")


def _gammatone_call(cfg, audio, sr, rng):
    return gammatone_spikes(audio, sr, cfg, rng)


def _lauscher_call(n_channels, audio, sr, rng):
    return lauscher_spikes(audio, sr, n_channels)


# ----------------------------------------------------------------------------- many utterances

_WORKER_FRONTEND = None


def _init_worker(frontend: str, n_channels: int, options: dict) -> None:
    global _WORKER_FRONTEND
    _WORKER_FRONTEND = make_frontend(frontend, n_channels, **options)


def _convert(args) -> tuple[np.ndarray, np.ndarray]:
    audio_fn, job, index, seed, duration = args
    audio, sr = audio_fn(job)
    audio = np.asarray(audio)[:int(round(duration * sr))]
    times, units = _WORKER_FRONTEND(audio, sr, np.random.default_rng([seed, index]))
    keep = times <= duration
    return times[keep].astype(np.float32), units[keep].astype(np.uint16)


def convert_many(audio_fn, jobs: list, frontend: str = "gammatone", n_channels: int = 700,
                 options: dict | None = None, seed: int = 0, duration: float = 1.0, workers: int = 2,
                 desc: str = "spikes", progress: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """Spike trains ``(times float32 s, units uint16)`` of ``audio_fn(job) -> (audio, sr)`` for every job,
    in order.  Audio is cut at ``duration`` s; utterance ``i`` draws its random numbers from
    ``(seed, i)``, so the result does not depend on ``workers`` (spawned processes; in-process when 1).
    ``audio_fn`` must be a module-level function so that workers can import it."""
    import sys

    from tqdm import tqdm

    init = (frontend, n_channels, dict(options or {}))
    work = [(audio_fn, job, i, seed, duration) for i, job in enumerate(jobs)]
    bar = dict(total=len(work), desc=f"building {desc}", unit="utt", disable=not progress, file=sys.stderr)
    if workers <= 1 or len(work) < 64:
        _init_worker(*init)
        return [_convert(w) for w in tqdm(work, **bar)]
    import multiprocessing as mp

    # A spawned child re-applies its parent's default start method; inside a joblib (loky) worker, as in a
    # Hydra joblib sweep, that is "loky", which the child cannot find: every worker dies at start and the pool
    # respawns them forever.  Make the default a standard one while the pool starts its workers.
    before = mp.get_start_method(allow_none=True)
    foreign = before is not None and before not in ("fork", "spawn", "forkserver")
    if foreign:
        mp.set_start_method("spawn", force=True)
    try:
        with mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=init) as pool:
            return list(tqdm(pool.imap(_convert, work, chunksize=8), **bar))
    finally:
        if foreign:
            mp.set_start_method(before, force=True)
