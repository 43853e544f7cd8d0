"""Per-command help written from the commented config files (no Hydra here).

``snnta COMMAND --help`` lists the config groups that command composes (from its ``defaults`` list), with
their options, and every key it takes with its default and the comment beside it in the YAML file; the
keys of each chosen group option (``dataset=shd``) come from that option's file.
"""

from __future__ import annotations

import re
from pathlib import Path

_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w]*):(?P<value>[^#]*?)\s*(?:#\s?(?P<comment>.*))?$")


def parse_commented_yaml(path: Path) -> tuple[list[str], list[tuple[str, str, str]], list[str]]:
    """``(header comment lines, [(dotted key, raw default, comment)], defaults-list groups)`` of a config file."""
    header, keys, groups, stack, block = [], [], [], [], None
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            if not keys and not groups and block is None:
                header.append(line.lstrip("# ").rstrip())
            continue
        if line.startswith(" ") or line.startswith("-"):
            if block == "defaults":
                m = re.match(r"\s*-\s*(?:override\s+)?([\w/]+)\s*:\s*(\S+)", line)
                if m and m.group(1) != "hydra":
                    groups.append(m.group(1))
                continue
            if block == "hydra":
                continue
        m = _LINE.match(line)
        if not m:
            continue
        depth = len(m["indent"]) // 2
        key, value, comment = m["key"], m["value"].strip(), (m["comment"] or "").strip()
        if depth == 0:
            block = key if key in ("defaults", "hydra") else None
            if block:
                continue
        stack = stack[:depth] + [key]
        if value:
            keys.append((".".join(stack), value, comment))
        elif not any(lines[j].startswith(" ") for j in range(i + 1, min(i + 2, len(lines)))):
            keys.append((".".join(stack), "", comment))
    return header, keys, groups


def _row(kv: str, comment: str, width: int) -> str:
    if len(kv) < width or not comment:
        return f"  {kv:<{width}} {comment}".rstrip()
    return f"  {kv}\n  {'':<{width}} {comment}"


def _options(config_dir: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir / group).glob("*.yaml"))


def _default_choice(config_dir: Path, command: str, group: str) -> str | None:
    for line in (config_dir / f"{command}.yaml").read_text().splitlines():
        m = re.match(rf"\s*-\s*{re.escape(group)}\s*:\s*(\S+)", line)
        if m:
            return m.group(1)
    return None


def command_help(command: str, config_dir: Path, overrides: list[str] = ()) -> str:
    """The help page of ``snnta COMMAND``: its groups and keys with defaults and comments."""
    header, keys, groups = parse_commented_yaml(config_dir / f"{command}.yaml")
    chosen = {o.split("=", 1)[0].lstrip("+"): o.split("=", 1)[1] for o in overrides if "=" in o}
    lines = [f"snnta {command}: {header[0].split(':', 1)[-1].strip() if header else ''}".rstrip(),
             f"usage: snnta {command} [-m] [key=value ...]", ""]
    lines += [f"  {h}" for h in header[1:] if h]
    if header[1:]:
        lines.append("")
    width = 30
    if groups:
        lines.append("groups (choose with group=NAME; the keys of the chosen one are listed below):")
        for g in groups:
            default = _default_choice(config_dir, command, g)
            opts = ", ".join(f"{o} (default)" if o == default else o for o in _options(config_dir, g))
            lines.append(f"  {g:<12} {opts}")
        lines.append("")
    lines.append("keys (key=default  what it does):")
    lines += [_row(f"{key}={value}", comment, width) for key, value, comment in keys]
    for g in groups:
        if g == "paths":
            gkeys = parse_commented_yaml(config_dir / "paths" / "default.yaml")[1]
        else:
            choice = chosen.get(g) or _default_choice(config_dir, command, g)
            path = config_dir / g / f"{choice}.yaml"
            if not path.is_file():
                continue
            gkeys = parse_commented_yaml(path)[1]
        if not gkeys:
            continue
        lines.append("")
        label = g if g == "paths" else f"{g}={chosen.get(g) or _default_choice(config_dir, command, g)}"
        lines.append(f"{label} keys:")
        lines += [_row(f"{g}.{key}={value}", comment, width) for key, value, comment in gkeys]
    lines += ["", f"`snnta {command} --cfg job [key=value ...]` prints the resolved config; `-m` sweeps "
              "comma-separated values;", "`hydra/launcher=joblib hydra.launcher.n_jobs=2` runs a sweep in parallel "
              "(installed by `make install`, or pip install -e '.[sweep]')."]
    return "\n".join(lines)
