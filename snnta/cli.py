"""Command-line entry point ``snnta {train,adapt,eval,report,export}``: a Hydra skin over :mod:`snnta.run.commands`.

The only module that imports Hydra.  Before Hydra runs, :func:`precheck` composes the config for every
value of every swept key and validates it with the command's argument builder (and, for adapt and eval,
resolves the checkpoint), so a bad sweep fails before its first job and before anything is written.
A single run's folder is created by snnta only after its checks pass (Hydra's run dir is neutral); a
sweep job that fails leaves no empty folder.  Every :class:`~snnta.errors.SnntaError` becomes one line on
stderr with exit status 2; Ctrl-C and SIGTERM exit with status 130, saying how to resume.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
import warnings
from pathlib import Path

from snnta.errors import ConfigError, SnntaError
from snnta.run.shell import check_launcher, check_words, sweep_summary

COMMANDS = ("train", "adapt", "eval", "report", "export")
USAGE = """usage: snnta COMMAND [-m] [key=value ...]      snnta COMMAND --help lists the keys of a command

commands:
  train    train an SNN at one bin width            snnta train dataset=randman neuron=adlif dt=4ms
  adapt    adapt a checkpoint to another bin width   snnta adapt method=zoh tgt_dt=1ms spikes=source
  eval     evaluate a checkpoint at its bin width    snnta eval checkpoint=runs/train/<run>
  report   tables and accuracy-vs-rho plots          snnta report dir=runs out=results/report
  export   write a checkpoint as a NIR graph         snnta export checkpoint=runs/train/<run> out=model.nir

Overrides are Hydra's: `-m` sweeps comma-separated values (method=none,tau tgt_dt=1ms,2ms),
`hydra/launcher=joblib hydra.launcher.n_jobs=2` runs a sweep in parallel (`make install` installs it);
`snnta COMMAND --cfg job` prints the resolved config.
Running the same `snnta train` command again resumes an interrupted run."""
#: hydra/launcher=NAME -> the plugin module it needs (installed by the `sweep` extra)
LAUNCHERS = {"joblib": "hydra_plugins.hydra_joblib_launcher", "submitit_local": "hydra_plugins.hydra_submitit_launcher",
             "submitit_slurm": "hydra_plugins.hydra_submitit_launcher"}


def per_neuron(kind: str, table, default):
    """Config resolver ``${per_neuron:${neuron.kind},{adlif:[512]},[256]}``: the value for this neuron kind
    from ``table``, else ``default``.  A recipe that differs by neuron stays one experiment config, and the
    stored (resolved) config holds only the chosen value."""
    from omegaconf import OmegaConf

    value = table.get(kind, default)
    return OmegaConf.create(value) if isinstance(value, (list, dict)) else value


def suffix(prefix: str, value, default=None) -> str:
    """Config resolver ``${suffix:_clip,${train.grad_clip}}``: ``"_clip0.5"``, or ``""`` when the value is null
    (or equals the optional ``default``: ``${suffix:_rr,${train.rate_reg},1.0}``), so a run name names an option
    only when it differs from the default and older runs keep their folders."""
    return "" if value is None or (default is not None and value == default) else f"{prefix}{value}"


def register_resolvers() -> None:
    """Make snnta's config resolvers known to OmegaConf (idempotent; also runs in every sweep worker,
    which imports this module to unpickle the task)."""
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("per_neuron", per_neuron, replace=True)
    OmegaConf.register_new_resolver("suffix", suffix, replace=True)


register_resolvers()


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

def _sweep_values(override: str) -> list[str] | None:
    """The values of a swept override (``key=a,b`` or ``key=choice(a,b)``) as override strings, read with
    Hydra's own parser, so commas inside a list or dict value (``model.hidden=[256,256]``,
    ``dataset.words={en:[stop,go]}``) do not split it; ``None`` for one value, for the other sweep functions
    (``range(..)``, ``glob(..)``, which Hydra expands itself) and for what does not parse (composing reports it)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep

    try:
        parsed = OverridesParser.create().parse_override(override)
    except Exception:  # noqa: BLE001 - reported by compose with Hydra's message
        return None
    if not (parsed.is_sweep_override() and isinstance(parsed.value(), ChoiceSweep)):
        return None
    values = [f"{parsed.get_key_element()}={v}" for v in parsed.sweep_string_iterator()]
    return values if len(values) > 1 else None


def _variants(overrides: list[str]) -> list[list[str]]:
    """Override lists to validate: every value of every swept key at least once."""
    items = [o for o in overrides if not o.startswith("-") and not o.lstrip("+~").startswith("hydra")]
    choices = [_sweep_values(o) or [o] for o in items]
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
        if group == "hydra/launcher":
            return f"hydra/launcher={bad} is not installed; run `make install` or pip install -e '.[sweep]'"
        if group == "method":
            from snnta.core.methods import method_choices

            return f"unknown method {bad!r}; choose one of: {method_choices()}"
        return f"unknown {group} {bad!r}; choose one of: {', '.join(opts)}"
    if "Could not override" in text or "not in struct" in text:
        key = text.split("'")[1] if "'" in text else "?"
        return f"unknown key {key!r} for `snnta {command}`; `snnta {command} --help` lists the keys"
    if type(e).__name__ in ("OverrideParseException", "LexerNoViableAltException") or "mismatched input" in text:
        detail = lines[0].split(": ", 1)[-1] if lines else text
        return f"cannot parse an override near {detail!r}; write key=value (see `snnta {command} --help`)"
    return lines[0] if lines else type(e).__name__


def precheck(command: str, overrides: list[str]) -> dict:
    """Compose and validate the config for each variant of the overrides; raise a one-line ConfigError.
    Returns the sweep folder (``hydra.sweep.dir``) the overrides give."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from snnta.run.args import BUILDERS
    from snnta.run.folders import find_checkpoint

    check_words(overrides, _TAKES_VALUE)
    check_launcher(overrides, LAUNCHERS)
    if not any(o in ("-m", "--multirun") for o in overrides):
        for o in overrides:
            key, sep, value = o.partition("=")
            if sep and not key.lstrip("+~").startswith("hydra") and _sweep_values(o):
                raise ConfigError(f"{key}: {value!r} lists several values; add -m to run one job per value, "
                                  f"or quote the value to keep its commas: '{key}=\"{value}\"'")
    sweep_dir, checks = None, []
    sweep_keys = [o for o in overrides if o.startswith("hydra.sweep.")]  # the folder a user names wins
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name=f"snnta_{command}"):
        for variant in _variants(overrides):
            try:
                cfg = compose(command, overrides=variant + (sweep_keys if sweep_dir is None else []),
                              return_hydra_config=sweep_dir is None)
                if sweep_dir is None:
                    sweep_dir = str(cfg.hydra.sweep.dir)
                    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
                plain = _plain(cfg)
            except (HydraException, OmegaConfBaseException, ValueError) as e:
                raise ConfigError(_hydra_message(e, command)) from None
            try:
                BUILDERS[command](plain)
            except KeyError as e:
                raise ConfigError(_hydra_message(e, command)) from None
            checks.append(plain)
    for plain in checks if command in ("adapt", "eval", "export") else ():  # after every value is known to be valid
        find_checkpoint(plain["checkpoint"], plain["paths"]["runs"])
    return sweep_dir


# --------------------------------------------------------------------------- Hydra entry

def _hydra_entry(command: str, keep: str, resume_hint: str):
    import hydra

    def task(cfg):
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        from snnta.run.commands import run_command
        from snnta.run.folders import remove_empty_dirs

        hc = HydraConfig.get()
        multirun = hc.mode == RunMode.MULTIRUN
        out = Path(hc.runtime.output_dir) if multirun else None
        try:
            return run_command(command, _plain(cfg), out, list(hc.overrides.task), multirun=multirun)
        except (SnntaError, FloatingPointError) as e:
            if out is not None:
                remove_empty_dirs(out, keep)
            _fail(command, str(e))
        except KeyboardInterrupt as e:
            if out is not None:
                remove_empty_dirs(out, keep)
            _fail(command, f"{str(e) or 'interrupted'}{resume_hint}", status=130)

    return hydra.main(config_path=str(config_dir()), config_name=command, version_base="1.3")(task)


class _WorkerKilled(BaseException):
    """A sweep worker killed by the system; a BaseException so that Hydra's error report (which catches
    Exception and adds a traceback hint) lets it through to :func:`main`, which prints it as one line."""


def _guard_joblib_workers() -> None:
    """One line instead of joblib's traceback when the system kills a sweep's worker process (SIGKILL, almost
    always for memory): Hydra then stops the whole sweep, the runs that finished are kept, and rerunning the
    command resumes it.  Wraps the joblib launcher's ``_core.launch`` (looked up per call by the plugin)."""
    try:
        from hydra_plugins.hydra_joblib_launcher import _core
        from joblib.externals.loky.process_executor import TerminatedWorkerError
    except ImportError:  # the launcher is not installed: nothing to guard
        return
    launch = getattr(_core.launch, "__wrapped__", _core.launch)

    def guarded(*args, **kwargs):
        try:
            return launch(*args, **kwargs)
        except TerminatedWorkerError as e:
            codes = re.search(r"exit codes of the workers are (\{[^}]*\})", str(e))
            raise _WorkerKilled(f" (exit codes {codes.group(1)})" if codes else "") from None

    guarded.__wrapped__ = launch
    _core.launch = guarded


def _worker_killed_message(command: str, codes: str) -> str:
    return (f"the system killed a sweep worker{codes}, most likely for memory, and the sweep stopped; finished "
            "runs are kept: run the same command again to resume, with fewer jobs at once (hydra.launcher.n_jobs=1)"
            + (" or a smaller batch_size=" if command in ("adapt", "eval") else ""))


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


_TAKES_VALUE = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-path", "-cp", "--config-dir",
                "-cd", "--experimental-rerun", "--info"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, overrides = argv[0], argv[1:]
    warnings.formatwarning = lambda message, *args, **kwargs: f"snnta {command}: warning: {message}\n"
    if command not in COMMANDS:
        _fail("", f"unknown command {command!r}; choose one of: {', '.join(COMMANDS)}")
    plain = [o for i, o in enumerate(overrides)
             if not o.startswith("-") and not (i > 0 and overrides[i - 1] in _TAKES_VALUE)]
    if any(o in ("--help", "-h") for o in overrides):
        from snnta.run.helptext import command_help

        print(command_help(command, config_dir(), plain))
        return 0
    multirun = any(o in ("-m", "--multirun") for o in overrides)
    keep, sweep_dir = ".", None
    if not any(o in ("--hydra-help", "--info", "--cfg", "-c") for o in overrides):
        try:
            swept = precheck(command, plain + (["-m"] if multirun else []))
        except SnntaError as e:
            _fail(command, str(e))
        if multirun:
            from snnta.run.folders import _existing_ancestor

            sweep_dir = Path(swept)
            keep = str(_existing_ancestor(sweep_dir))
            if not any(o.startswith("hydra.sweep.dir=") for o in overrides):
                overrides = overrides + [f"hydra.sweep.dir={sweep_dir}"]  # the folder the summary reads
    elif any(o in ("--cfg", "-c") for o in overrides) and "--resolve" not in overrides:
        overrides = overrides + ["--resolve"]  # show the values a run would use
    hint = f"; run `snnta {' '.join(argv)}` again to resume" if command == "train" else ""
    entry = _hydra_entry(command, keep, hint)
    if multirun:
        _guard_joblib_workers()
    saved = sys.argv
    sys.argv = [f"snnta-{command}"] + overrides
    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    started = time.time() - 1.0  # a metrics.json written by this sweep is newer (filesystem mtime granularity)
    try:
        entry()
    except _WorkerKilled as e:
        _fail(command, _worker_killed_message(command, str(e)), status=1)
    except ValueError as e:  # Hydra's own command-line checks (e.g. --cfg together with -m)
        _fail(command, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
    finally:
        sys.argv = saved
        signal.signal(signal.SIGTERM, old_term)
    if sweep_dir is not None and sweep_dir.is_dir():
        sweep_summary(command, sweep_dir, since=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
