"""Command-line entry point ``snnta {train,adapt,eval,report}``: a Hydra skin over :mod:`snnta.run.commands`.

The only module that imports Hydra.  Before Hydra runs, :func:`precheck` composes the config for every
value of every swept key and validates it with the command's argument builder, so a bad sweep fails
before its first job and before anything is written.  Every :class:`~snnta.errors.SnntaError` becomes
one line on stderr with exit status 2.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from snnta.errors import ConfigError, SnntaError

COMMANDS = ("train", "adapt", "eval", "report")
USAGE = """usage: snnta COMMAND [-m] [key=value ...]

commands:
  train    train an SNN at one bin width            snnta train dataset=randman neuron=adlif dt=4ms
  adapt    adapt a checkpoint to another bin width   snnta adapt method=zoh tgt_dt=1ms spikes=source
  eval     evaluate a checkpoint at its bin width    snnta eval checkpoint=runs/train/<run>
  report   tables and accuracy-vs-dt plots           snnta report dir=runs out=results/report

Overrides are Hydra's: `-m` sweeps comma-separated values (method=none,tau tgt_dt=1ms,2ms),
`hydra/launcher=joblib` runs a sweep in parallel; `snnta COMMAND --cfg job` prints the config.
Running the same `snnta train` command again resumes an interrupted run."""


def config_dir() -> Path:
    """The ``configs/`` folder: ``$SNNTA_CONFIG_DIR`` or the one beside the package."""
    env = os.environ.get("SNNTA_CONFIG_DIR")
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "configs"
    if not (path / "train.yaml").is_file():
        raise ConfigError(f"config folder not found at {path}; install snnta from its source tree "
                          "(pip install -e .) or set SNNTA_CONFIG_DIR")
    return path


def _fail(command: str, message: str, status: int = 2):
    prefix = f"snnta {command}: " if command else "snnta: "
    print(f"{prefix}error: {message}", file=sys.stderr)
    sys.exit(status)


def _plain(cfg) -> dict:
    """A composed config as a plain, resolved ``dict`` (the library never sees Hydra or OmegaConf)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


# --------------------------------------------------------------------------- precheck with compose

def _split_sweep(value: str) -> list[str] | None:
    """Values of a swept override; ``None`` for sweep functions (``range(..)``, ``glob(..)``)."""
    if "(" in value or value.startswith("[") or value.startswith("'") or value.startswith('"'):
        return None
    return [v.strip() for v in value.split(",")]


def _variants(overrides: list[str]) -> list[list[str]]:
    """Override lists to validate: every value of every swept key at least once."""
    items = [o for o in overrides if not o.startswith("-") and not o.lstrip("+~").startswith("hydra")]
    choices = []
    for o in items:
        key, sep, value = o.partition("=")
        vals = _split_sweep(value) if sep else None
        choices.append([f"{key}={v}" for v in vals] if vals and len(vals) > 1 else [o])
    base = [c[0] for c in choices]
    variants = [base]
    for i, c in enumerate(choices):
        for alt in c[1:]:
            variants.append(base[:i] + [alt] + base[i + 1:])
    return variants


def _hydra_message(e: Exception, command: str) -> str:
    """Hydra's multi-line errors, condensed to one line."""
    text = str(e).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if "Could not find '" in text and "Available options" in text:
        missing = text.split("Could not find '")[1].split("'")[0]
        group, _, bad = missing.rpartition("/")
        block = text.split("Available options in")[1].split("Config search path")[0]
        opts = [ln.strip() for ln in block.splitlines()[1:] if ln.strip()]
        if group == "method":
            from snnta.core.methods import method_choices

            return f"unknown method {bad!r}; choose one of: {method_choices()}"
        return f"unknown {group} {bad!r}; choose one of: {', '.join(opts)}"
    if "Could not override" in text or "not in struct" in text:
        key = text.split("'")[1] if "'" in text else "?"
        return f"unknown key {key!r} for `snnta {command}`; `snnta {command} --cfg job` lists the keys"
    if type(e).__name__ in ("OverrideParseException", "LexerNoViableAltException") or "mismatched input" in text:
        detail = lines[0].split(": ", 1)[-1] if lines else text
        return f"cannot parse an override near {detail!r}; write key=value (see `snnta --help`)"
    return lines[0] if lines else type(e).__name__


def precheck(command: str, overrides: list[str]) -> None:
    """Compose and validate the config for each variant of the overrides; raise a one-line ConfigError."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from snnta.run.args import BUILDERS

    cfg_dir = config_dir()
    if not any(o in ("-m", "--multirun") for o in overrides):
        for o in overrides:
            key, sep, value = o.partition("=")
            vals = _split_sweep(value) if sep and not key.lstrip("+~").startswith("hydra") else None
            if vals and len(vals) > 1:
                raise ConfigError(f"{key}: {value!r} lists several values; add -m to run one job per value")
    validate = BUILDERS[command] if command in ("train", "adapt") else None
    with initialize_config_dir(config_dir=str(cfg_dir), version_base="1.3", job_name=f"snnta_{command}"):
        for variant in _variants(overrides):
            try:
                cfg = compose(command, overrides=variant)
                plain = _plain(cfg) if validate is not None else None
            except (HydraException, OmegaConfBaseException, ValueError) as e:
                raise ConfigError(_hydra_message(e, command)) from None
            if validate is not None:
                try:
                    validate(plain)
                except KeyError as e:
                    raise ConfigError(_hydra_message(e, command)) from None


# --------------------------------------------------------------------------- Hydra entry

def _hydra_entry(command: str):
    import hydra

    def task(cfg):
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        from snnta.run.commands import run_command

        hc = HydraConfig.get()
        try:
            return run_command(command, _plain(cfg), Path(hc.runtime.output_dir), list(hc.overrides.task),
                               multirun=hc.mode == RunMode.MULTIRUN)
        except (SnntaError, FloatingPointError) as e:
            _fail(command, str(e))
        except KeyboardInterrupt:
            _fail(command, "interrupted; run the same command again to resume", status=130)

    return hydra.main(config_path=str(config_dir()), config_name=command, version_base="1.3")(task)


_TAKES_VALUE = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-path", "-cp", "--config-dir",
                "-cd", "--experimental-rerun"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, overrides = argv[0], argv[1:]
    warnings.formatwarning = lambda message, *args, **kwargs: f"snnta {command}: warning: {message}\n"
    if command not in COMMANDS:
        _fail("", f"unknown command {command!r}; choose one of: {', '.join(COMMANDS)}")
    if not any(o in ("--help", "-h", "--hydra-help", "--info") for o in overrides):
        plain = [o for i, o in enumerate(overrides)
                 if not o.startswith("-") and not (i > 0 and overrides[i - 1] in _TAKES_VALUE)]
        try:
            precheck(command, plain + [o for o in overrides if o in ("-m", "--multirun")])
        except SnntaError as e:
            _fail(command, str(e))
    entry = _hydra_entry(command)
    saved = sys.argv
    sys.argv = [f"snnta-{command}"] + overrides
    try:
        entry()
    except ValueError as e:  # Hydra's own command-line checks (e.g. --cfg together with -m)
        _fail(command, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
