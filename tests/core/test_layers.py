"""The package's layers: no module imports a module of a higher layer, and every registry drives the
choices the user sees (config files, error messages)."""

import ast
from pathlib import Path

import pytest

import snnta
from snnta.core import ssm
from snnta.core.methods import ALIASES, METHODS, get_method, method_choices
from snnta.core.neurons import NEURONS, spiking_neurons
from snnta.errors import ConfigError

PKG = Path(snnta.__file__).parent
CONFIGS = PKG.parent / "configs"
#: lowest first; a module may import only from its own layer or lower ones
LAYERS = ["snnta.errors", "snnta.util", "snnta.core", "snnta.interop", "snnta.data", "snnta.run", "snnta.cli"]


def layer_of(module: str) -> int:
    for i, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return i
    return -1  # snnta/__init__: the public API, imports everything


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("snnta"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("snnta"))
    return found


def modules():
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


@pytest.mark.parametrize("module,path", list(modules()), ids=lambda x: str(x) if isinstance(x, str) else "")
def test_no_upward_imports(module, path):
    own = layer_of(module)
    if own < 0:
        return
    upward = sorted(m for m in imports(path) if m != "snnta" and layer_of(m) > own)
    assert not upward, f"{module} (layer {LAYERS[own]}) imports higher layers: {upward}"


def test_only_the_cli_imports_hydra():
    for module, path in modules():
        text = path.read_text()
        if module != "snnta.cli":
            assert "import hydra" not in text and "from hydra" not in text and "omegaconf" not in text, module


def test_method_configs_match_the_registry():
    names = {p.stem for p in (CONFIGS / "method").glob("*.yaml")}
    assert names == set(METHODS) | set(ALIASES) | {"custom", "rebin"}
    for p in (CONFIGS / "method").glob("*.yaml"):
        if p.stem != "custom":
            assert get_method(p.stem).name in p.read_text()


def test_neuron_configs_match_the_registry():
    names = {p.stem for p in (CONFIGS / "neuron").glob("*.yaml")}
    assert names == set(spiking_neurons())
    assert "li" in NEURONS and "li" not in spiking_neurons()


def test_errors_list_the_registry():
    with pytest.raises(ConfigError) as e:
        get_method("foo")
    assert method_choices() in str(e.value) and all(m in method_choices() for m in METHODS)
    with pytest.raises(ConfigError, match=", ".join(ssm.RULES)):
        ssm.canonical_rule("integral")
