"""Compare the fast gammatone front end with lauscher (the SHD chain) on the same eSpeak NG utterances.

    OMP_NUM_THREADS=1 python scripts/compare_frontends.py [--n 3] [--cache /tmp/lauscher_cache]

For each utterance it prints the spike count, active channels (of 700), mean rate of the active channels,
the correlation of the per-channel spike counts (do the same channels respond?), the correlation of the
population spike count in 10 ms bins (do they respond at the same times?), and the run time of each front
end.  lauscher takes about a minute per utterance; ``--cache`` keeps its spikes between runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from snnta.data.frontends import cochlea
from snnta.data.generators import speech

UTTERANCES = [("zero", "en-us+m3"), ("neun", "de+f2"), ("seven", "en+klatt"), ("drei", "de+Annie"),
              ("five", "en-029+f4")]
C = 700


def stats(times: np.ndarray, units: np.ndarray, duration: float) -> dict:
    counts = np.bincount(units, minlength=C)
    active = int((counts > 0).sum())
    return {"spikes": int(len(times)), "active": active,
            "rate_active_hz": float(len(times) / max(active, 1) / duration),
            "max_per_channel": int(counts.max(initial=0)),
            "centroid_channel": float((counts * np.arange(C)).sum() / max(counts.sum(), 1))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3, help="number of utterances (at most 5)")
    ap.add_argument("--cache", type=Path, default=None, help="folder to keep lauscher's spikes in")
    ap.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = ap.parse_args()
    rows = []
    for word, voice in UTTERANCES[:args.n]:
        audio, sr = speech.say(word, voice, 170, 50)
        duration = len(audio) / sr
        t0 = time.perf_counter()
        gt, gu = cochlea.gammatone_spikes(audio, sr, rng=np.random.default_rng(0))
        t_fast = time.perf_counter() - t0
        cached = args.cache / f"{word}_{voice}.npz" if args.cache else None
        t0 = time.perf_counter()
        if cached and cached.is_file():
            z = np.load(cached)
            lt, lu, t_slow = z["t"], z["u"], float(z["seconds"])
        else:
            lt, lu = cochlea.lauscher_spikes(audio, sr, C)
            t_slow = time.perf_counter() - t0
            if cached:
                cached.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cached, t=lt, u=lu, seconds=t_slow)
        edges = np.arange(0, duration + 0.01, 0.01)
        ch_corr = float(np.corrcoef(np.bincount(gu, minlength=C), np.bincount(lu, minlength=C))[0, 1])
        t_corr = float(np.corrcoef(np.histogram(gt, edges)[0], np.histogram(lt, edges)[0])[0, 1])
        row = {"utterance": f"{word} ({voice})", "duration_s": duration,
               "gammatone": {**stats(gt, gu, duration), "seconds": t_fast},
               "lauscher": {**stats(lt, lu, duration), "seconds": t_slow},
               "channel_count_corr": ch_corr, "time_profile_corr_10ms": t_corr}
        rows.append(row)
        g, l_ = row["gammatone"], row["lauscher"]
        print(f"{row['utterance']:<22} {duration:.2f}s | spikes {g['spikes']:>6} vs {l_['spikes']:>6} | active "
              f"{g['active']:>3} vs {l_['active']:>3} | rate/active {g['rate_active_hz']:6.1f} vs "
              f"{l_['rate_active_hz']:6.1f} Hz | centroid ch {g['centroid_channel']:5.0f} vs "
              f"{l_['centroid_channel']:5.0f} | corr channels {ch_corr:+.2f} time {t_corr:+.2f} | "
              f"{t_fast:.3f}s vs {t_slow:.1f}s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
