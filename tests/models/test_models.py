"""Registry and per-model tests: shapes, backward, determinism, parameter counts vs docs/models.md,
and overfitting a tiny synthetic batch."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mepipe.models import KNOWN_INPUTS, create_model, get_config, list_models

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"
ALL = [
    "ahmsa-net",
    "facesleuth-cva",
    "facesleuth-cva-authors",
    "facesleuth-soa",
    "facesleuth-soa-frozen",
    "facesleuth-soa-shared",
    "resnet18-baseline",
]

pytestmark = pytest.mark.usefixtures("torch_one_thread")

#: models whose default size takes seconds per pass on the CPU (75 M parameters at 224 px)
HEAVY = {"facesleuth-cva-authors"}


def _marked(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in names]


# Small variants for the training tests (CPU seconds, not minutes).
SMALL = {
    "facesleuth-cva": dict(input_size=32, width=8, embed_dim=8, heads=(1, 2, 2), window=4, hidden=32, dropout=0.0),
    "facesleuth-cva-authors": dict(
        input_size=32,
        stem_width=12,
        channels=(8, 8, 16, 32),
        embed_dim=8,
        heads=(1, 2, 2),
        window=4,
        hidden=32,
        head_hidden=16,
    ),
    "facesleuth-soa": dict(input_size=32, width=8, embed_dim=8, heads=(1, 2, 2), window=4, hidden=32, dropout=0.0),
    "facesleuth-soa-shared": dict(
        input_size=32, width=8, embed_dim=8, heads=(1, 2, 2), window=4, hidden=32, dropout=0.0
    ),
    "facesleuth-soa-frozen": dict(
        input_size=32, width=8, embed_dim=8, heads=(1, 2, 2), window=4, hidden=32, dropout=0.0
    ),
    "ahmsa-net": dict(dims=(32, 32, 32), heads=2),
    "resnet18-baseline": dict(input_size=32, width=8),
}


def make_inputs(fields, batch: int, size: int, seed: int = 0) -> dict:
    """Random batched inputs shaped like CacheDataset items."""
    g = torch.Generator().manual_seed(seed)
    shapes = {
        "onset": (3, size, size),
        "apex": (3, size, size),
        "flow": (2, size, size),
        "strain": (1, size, size),
        "ahmsa": (3, 28, 28),
    }
    out = {}
    for f in fields:
        if f == "aus":
            out[f] = torch.randint(0, 2, (batch, 21), generator=g).float()
        elif f == "aus_mask":
            out[f] = torch.ones(batch, 1)
        elif f in ("onset", "apex"):
            out[f] = torch.rand((batch,) + shapes[f], generator=g)
        else:
            out[f] = torch.randn((batch,) + shapes[f], generator=g)
    return out


def doc_param_counts() -> dict[str, int]:
    """Parse the parameter table of docs/models.md: rows ``| `name` | 1,234,567 | ...``."""
    counts = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*`([a-z0-9-]+)`\s*\|\s*([\d,]+)\s*\|", line)
        if m:
            counts[m.group(1)] = int(m.group(2).replace(",", ""))
    return counts


# ---- registry -----------------------------------------------------------------------------------


def test_registry_lists_models_and_configs():
    assert list_models() == ALL
    for name in ALL:
        cfg = get_config(name)
        assert cfg.name == name
        assert cfg.inputs and set(cfg.inputs) <= set(KNOWN_INPUTS)
        assert cfg.input_size > 0 and cfg.lr > 0 and cfg.batch_size > 0 and cfg.epochs > 0
    a = get_config("ahmsa-net")
    assert (a.inputs, a.input_size, a.optimizer, a.lr, a.batch_size, a.epochs) == (
        ("ahmsa",),
        28,
        "adam",
        5e-6,
        256,
        800,
    )
    assert get_config("facesleuth-cva").inputs == ("onset", "apex", "aus")
    assert get_config("resnet18-baseline", inputs=["flow", "strain"]).inputs == ("flow", "strain")


def test_registry_errors():
    with pytest.raises(KeyError, match="unknown model"):
        get_config("vit-huge")
    with pytest.raises(ValueError, match="num_classes"):
        create_model("ahmsa-net", 1)
    with pytest.raises(TypeError):
        get_config("ahmsa-net", colour="red")


def test_import_models_does_not_import_torch():
    code = "import sys, mepipe.models as m; m.get_config('facesleuth-cva'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- per model: shapes, backward, parameter counts ----------------------------------------------------


@pytest.mark.parametrize("name", _marked(ALL))
def test_forward_backward_default_size(name):
    torch.manual_seed(0)
    model = create_model(name, 5)
    cfg = model.config
    batch = make_inputs(cfg.inputs, 2, 128)
    out = model(**batch)
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    out.logsumexp(dim=1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize("name", _marked([n for n in ALL if n != "ahmsa-net"]))
def test_other_input_size_is_resized_inside(name):
    model = create_model(name, 3).eval()
    out = model(**make_inputs(model.config.inputs, 2, 96))
    assert out.shape == (2, 3)


def test_parameter_counts_match_docs():
    documented = doc_param_counts()
    assert set(documented) == set(ALL), f"docs/models.md table lists {sorted(documented)}"
    for name in ALL:
        n = sum(p.numel() for p in create_model(name, 5).parameters() if p.requires_grad)
        print(f"{name}: {n:,} parameters")
        assert n == documented[name], f"{name}: code has {n:,} parameters, docs/models.md says {documented[name]:,}"


def test_missing_or_wrong_inputs_raise():
    m = create_model("facesleuth-cva", 3, **SMALL["facesleuth-cva"])
    x = make_inputs(("onset", "apex", "aus"), 2, 32)
    with pytest.raises(TypeError):
        m(onset=x["onset"], apex=x["apex"])
    with pytest.raises(ValueError, match="aus"):
        m(onset=x["onset"], apex=x["apex"], aus=torch.zeros(2, 20))
    with pytest.raises(ValueError, match="channels"):
        m(onset=x["onset"][:, :1], apex=x["apex"], aus=x["aus"])
    r = create_model("resnet18-baseline", 3, **SMALL["resnet18-baseline"])
    with pytest.raises(TypeError, match="missing"):
        r(onset=x["onset"])
    with pytest.raises(ValueError, match="not an image"):
        create_model("resnet18-baseline", 3, inputs=("aus",))


def test_resnet_inputs_are_configurable():
    m = create_model("resnet18-baseline", 4, inputs=("flow", "strain"), **SMALL["resnet18-baseline"])
    assert m.config.inputs == ("flow", "strain") and m.in_ch == 3
    assert m(**make_inputs(("flow", "strain"), 2, 40)).shape == (2, 4)
    # the default pair is apex - onset: equal frames give the same output as a zero image
    d = create_model("resnet18-baseline", 4, **SMALL["resnet18-baseline"]).eval()
    same = torch.rand(2, 3, 32, 32)
    a = d(onset=same, apex=same)
    b = d(onset=torch.zeros_like(same), apex=torch.zeros_like(same))
    assert torch.allclose(a, b, atol=1e-6)


def test_facesleuth_without_aus():
    m = create_model("facesleuth-cva", 3, use_aus=False, **SMALL["facesleuth-cva"])
    assert m.config.inputs == ("onset", "apex")
    assert m(**make_inputs(m.config.inputs, 2, 32)).shape == (2, 3)


def test_facesleuth_uses_the_au_vector():
    torch.manual_seed(0)
    m = create_model("facesleuth-cva", 3, **SMALL["facesleuth-cva"]).eval()
    x = make_inputs(("onset", "apex", "aus"), 2, 32)
    a = m(**x)
    x["aus"] = 1.0 - x["aus"]
    assert not torch.allclose(a, m(**x))


# ---- determinism ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_deterministic_under_seed(name):
    def run(seed):
        torch.manual_seed(seed)
        m = create_model(name, 4, **SMALL[name])
        x = make_inputs(m.config.inputs, 4, 32, seed=1)
        out = m(**x)
        return m.state_dict(), out.detach()

    s1, o1 = run(0)
    s2, o2 = run(0)
    s3, _ = run(1)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert torch.equal(o1, o2)
    assert any(not torch.equal(s1[k], s3[k]) for k in s1 if s1[k].is_floating_point() and s1[k].numel() > 1)


# ---- overfitting a tiny batch ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@pytest.mark.slow
def test_overfits_tiny_batch(name):
    torch.manual_seed(0)
    n_classes = 4
    model = create_model(name, n_classes, **SMALL[name])
    x = make_inputs(model.config.inputs, 8, 32, seed=3)
    y = torch.arange(8) % n_classes
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    first = None
    for _ in range(50):
        loss = F.cross_entropy(model(**x), y)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = float(F.cross_entropy(model(**x), y))
    chance = math.log(n_classes)
    print(f"{name}: loss {first:.3f} -> {final:.3f} (chance {chance:.3f})")
    assert final < 0.25 * chance


@pytest.mark.slow
def test_models_command_lists_every_model_with_counts(capsys):
    import json as _json

    from mepipe.cli import main
    from mepipe.models import create_model, get_config, list_models

    assert main(["models", "--json", "--classes", "3"]) == 0
    rows = {r["name"]: r for r in _json.loads(capsys.readouterr().out)}
    assert sorted(rows) == list_models()
    for name, r in rows.items():
        m = create_model(name, 3)
        assert r["parameters"] == sum(p.numel() for p in m.parameters() if p.requires_grad)
        assert r["inputs"] == list(m.config.inputs)
        cfg = get_config(name)
        assert r["training"]["lr"] == cfg.lr and r["defaults_source"] == cfg.defaults_source
    assert main(["models", "nope"]) == 2
    assert "unknown model" in capsys.readouterr().err


# ---- the authors' widths, the chaining of attention maps, the AU mask ---------------------------------


def test_authors_fpf_has_exactly_the_authors_parameter_count():
    # the authors' SwinTransformer(img_size=224, patch_size=4, embed_dim=128, depths=[2, 2, 6],
    # num_heads=[4, 8, 16], window 7) without its unused 1000-class head: 21,576,632 parameters
    from mepipe.models.facesleuth import AUTHORS_WIDTHS
    from mepipe.models.swin import SwinEncoder

    w = AUTHORS_WIDTHS
    fpf = SwinEncoder(
        img_size=w["input_size"],
        patch=w["patch"],
        in_ch=3,
        embed_dim=w["embed_dim"],
        depths=w["depths"],
        heads=w["heads"],
        window=w["window"],
    )
    assert sum(p.numel() for p in fpf.parameters()) == 21_576_632
    assert (fpf.out_dim, fpf.out_res) == (512, 14)


def test_authors_variant_shapes_and_chain_convs():
    m = create_model("facesleuth-cva-authors", 5, **SMALL["facesleuth-cva-authors"])
    assert m.motion.chain == "conv"
    convs = [p for p in m.motion.chain_proj if isinstance(p, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(8, 16), (16, 32)]  # 128->256, 256->512 at full width
    assert m.stem[0].out_channels == 12 and m.stem[3].out_channels == 8  # 180 -> 128 at full width


def test_chain_conv_is_learned_and_mean_is_not():
    torch.manual_seed(0)
    kw = SMALL["facesleuth-cva"]
    mean = create_model("facesleuth-cva", 3, **kw)
    conv = create_model("facesleuth-cva", 3, chain="conv", **kw)
    extra = sum(p.numel() for p in conv.parameters()) - sum(p.numel() for p in mean.parameters())
    assert extra == 8 * 16 + 16 * 32  # two bias-free 1x1 convs where the channel count changes
    x = make_inputs(("onset", "apex", "aus"), 4, 32)
    conv(**x).sum().backward()
    assert all(float(p.weight.grad.abs().sum()) > 0 for p in conv.motion.chain_proj if isinstance(p, torch.nn.Conv2d))
    with pytest.raises(ValueError, match="chain"):
        create_model("facesleuth-cva", 3, chain="sum", **kw)


def test_au_mask_makes_missing_aus_differ_from_no_au_active():
    torch.manual_seed(0)
    m = create_model("facesleuth-cva", 3, au_mask=True, **SMALL["facesleuth-cva"]).eval()
    assert m.config.inputs == ("onset", "apex", "aus", "aus_mask")
    x = make_inputs(("onset", "apex"), 2, 32)
    zeros = torch.zeros(2, 21)
    known = m(**x, aus=zeros, aus_mask=torch.ones(2, 1))
    unknown = m(**x, aus=zeros, aus_mask=torch.zeros(2, 1))
    assert not torch.allclose(known, unknown)
    # without the mask the same two samples are indistinguishable
    plain = create_model("facesleuth-cva", 3, **SMALL["facesleuth-cva"]).eval()
    assert plain.config.inputs == ("onset", "apex", "aus")
    with pytest.raises(TypeError, match="aus_mask"):
        m(**x, aus=zeros)
    with pytest.raises(TypeError, match="aus_mask"):
        plain(**x, aus=zeros, aus_mask=torch.ones(2, 1))
    with pytest.raises(ValueError, match="au_mask"):
        create_model("facesleuth-cva", 3, au_mask=True, use_aus=False, **SMALL["facesleuth-cva"])
    # an unknown vector's bits are not read: a stray 1 with mask 0 changes nothing
    stray = zeros.clone()
    stray[:, 3] = 1
    assert torch.allclose(m(**x, aus=stray, aus_mask=torch.zeros(2, 1)), unknown)
