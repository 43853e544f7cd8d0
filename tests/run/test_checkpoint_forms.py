"""Checkpoints keep the spike budget and the form of the per-step parameters (what ``tau`` reads)."""

import torch

from snnta.core.deployment import adapt_model, deploy
from snnta.core.model import ModelConfig, SNNClassifier
from snnta.run.checkpoint import load_checkpoint, save_checkpoint


def _model(rule: str) -> SNNClassifier:
    torch.manual_seed(0)
    return SNNClassifier(ModelConfig(n_in=3, n_classes=2, hidden=(4,), neuron="adlif", train_rule=rule))


def test_adapted_checkpoint_keeps_the_token_bucket(tmp_path):
    dep = adapt_model(deploy(_model("native"), 4e-3), 3e-3, "euler", "source")
    assert dep.spike_step.budget == 0.75
    save_checkpoint(tmp_path / "a.pt", dep, {"name": "randman"})
    back, _ = load_checkpoint(tmp_path / "a.pt")
    assert back.spike_step == dep.spike_step


def test_adapted_checkpoint_keeps_the_recurrent_delay(tmp_path):
    dep = adapt_model(deploy(_model("native"), 4e-3), 1e-3, "impulse", "source_delay")
    assert (dep.spike_step.refractory, dep.spike_step.delay) == (3, 4)
    save_checkpoint(tmp_path / "d.pt", dep, {"name": "randman"})
    back, _ = load_checkpoint(tmp_path / "d.pt")
    assert back.spike_step == dep.spike_step


def test_old_training_checkpoint_gets_its_form_from_the_model(tmp_path):
    src = deploy(_model("zoh"), 4e-3)
    save_checkpoint(tmp_path / "s.pt", src, {"name": "randman"})
    obj = torch.load(tmp_path / "s.pt", weights_only=True)
    for p in obj["step_params"]:
        del p["kind"], p["form"]
    obj["spike_step"] = obj["spike_step"][:2]
    torch.save(obj, tmp_path / "s.pt")
    back, _ = load_checkpoint(tmp_path / "s.pt")
    assert [(p.kind, p.form) for p in back.params] == [("adlif", "zoh"), ("li", "zoh")]
    tau = adapt_model(back, 2e-3, "tau")  # zoh form: tau is the exact re-discretization
    integral = adapt_model(back, 2e-3, "integral")
    assert torch.allclose(tau.params[0].A_bar, integral.params[0].A_bar, rtol=0, atol=1e-6)
