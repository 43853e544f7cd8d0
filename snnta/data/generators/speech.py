"""Speech from eSpeak NG through ``ctypes``: no system install, only the ``espeakng-loader`` wheel.

The wheel ships ``libespeak-ng.so`` and its ``espeak-ng-data`` folder (languages and about 100 voice
variants such as ``m3``, ``f2``, ``klatt``).

eSpeak NG keeps internal state across utterances (its waveform generator's flutter and phase, which
``espeak_ng_SetRandSeed`` does not reset), so the same call gives slightly different audio depending on
what was said before.  :func:`say` therefore loads a fresh copy of the library for every utterance and
unloads it afterwards (about 4 ms): the audio then depends only on the arguments, whatever the order or
the process, which makes the generated datasets deterministic.
"""

from __future__ import annotations

import _ctypes
import ctypes
import threading
from pathlib import Path

import numpy as np

from snnta.errors import ConfigError, DataError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_RATE = 1
_ESPEAK_PITCH = 3
_ESPEAKCHARS_UTF8 = 1
_EE_OK = 0

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def _paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError as e:
        raise DataError("speech synthesis needs the espeakng-loader wheel: pip install 'snnta[datasets]' "
                        "(or pip install espeakng-loader)") from e
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


def voice_variants() -> list[str]:
    """Names of the voice variants shipped with the wheel (``espeak-ng-data/voices/!v``), sorted."""
    _, data = _paths()
    folder = Path(data) / "voices" / "!v"
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    if not names:
        raise DataError(f"no eSpeak NG voice variants found in {folder}")
    return names


def choose_voices(n_voices: int, rng: np.random.Generator, minimum: int) -> tuple[list[str], np.ndarray]:
    """``(variants, order)``: all voice variants and a random order of their indices, cut to the first
    ``n_voices`` (0: all); ``n_voices`` must lie in ``[minimum, len(variants)]``."""
    variants = voice_variants()
    order = rng.permutation(len(variants))
    if n_voices:
        if not minimum <= n_voices <= len(variants):
            raise ConfigError(f"dataset.n_voices must be 0 (all) or in [{minimum}, {len(variants)}], got {n_voices}")
        order = order[:n_voices]
    return variants, order


class Synthesizer:
    """One eSpeak NG instance: :meth:`say` returns int16 audio at :attr:`sample_rate` Hz."""

    def __init__(self):
        lib_path, data_path = _paths()
        self._lib = ctypes.CDLL(lib_path)
        lib = self._lib
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0)
        if rate <= 0:
            raise DataError(f"eSpeak NG failed to initialize from {lib_path} with data {data_path}")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []

        def collect(wav, n, events):
            if n > 0 and wav:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = _CALLBACK(collect)  # keep a reference: the library calls it later
        lib.espeak_SetSynthCallback(self._callback)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Terminate eSpeak NG and unload the library, so the next instance starts from a clean state."""
        if self._lib is not None:
            self._lib.espeak_Terminate()
            _ctypes.dlclose(self._lib._handle)
            self._lib = None

    def say(self, text: str, voice: str, rate_wpm: int = 175, pitch: int = 50) -> np.ndarray:
        """Speak ``text`` with ``voice`` (e.g. ``en-us+m3``) at ``rate_wpm`` words per minute and base
        ``pitch`` (0-100); returns int16 samples at :attr:`sample_rate` Hz."""
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise ConfigError(f"eSpeak NG has no voice {voice!r}")
            self._lib.espeak_SetParameter(_ESPEAK_RATE, int(rate_wpm), 0)
            self._lib.espeak_SetParameter(_ESPEAK_PITCH, int(pitch), 0)
            self._chunks = []
            buf = ctypes.create_string_buffer(text.encode("utf-8"))
            if self._lib.espeak_Synth(buf, len(buf), 0, 0, 0, _ESPEAKCHARS_UTF8, None, None) != _EE_OK:
                raise DataError(f"eSpeak NG failed to speak {text!r} with voice {voice!r}")
            self._lib.espeak_Synchronize()
            out = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            self._chunks = []
        return out.astype(np.int16, copy=False)


_LOCK = threading.Lock()


def say(text: str, voice: str, rate_wpm: int = 175, pitch: int = 50) -> tuple[np.ndarray, int]:
    """``(audio float32 in [-1, 1], sample_rate Hz)`` of ``text`` spoken by ``voice`` at ``rate_wpm`` words
    per minute and ``pitch`` (0-100), from a freshly loaded eSpeak NG (deterministic in the arguments)."""
    with _LOCK:
        s = Synthesizer()
        try:
            audio = s.say(text, voice, rate_wpm, pitch)
        finally:
            s.close()
    return audio.astype(np.float32) / 32768.0, s.sample_rate
