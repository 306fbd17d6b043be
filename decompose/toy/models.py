"""The papers' toy models, trained by the project from a seed, each with its ground-truth mechanisms.

- TMS (toy model of superposition): relu(W_out·W_in·x + b) with n sparse features in d < n dimensions,
  trained with tied weights (W_out = W_inᵀ) and then untied for the decomposition. Mechanism f is the
  part of each matrix that carries feature f: column f of W_in, row f of W_out.
- Compressed computation (residual MLP): features embedded in a residual stream by a fixed random
  W_E (unit rows), one or more MLP blocks, read out by W_Eᵀ; trained so that output f is
  x_f + relu(x_f) (k_f = 1, the SPD paper's labels; optionally x_f + relu(k_f·x_f), k_f ~ U[1, 2]),
  with more features than neurons. As the SPD paper judges it (and its reference implementation's
  IdentityCIError / DenseCIPattern metrics), each mlp_in holds one mechanism per
  feature: W_in·e_f, the neurons that feature f drives. It is compared in feature coordinates, the
  matrix as it acts on the features' directions (W_in·W_Eᵀ, neurons × features, mechanism f = its
  column f), because the data never reach the rest of the residual space and what a component does
  there does not count. mlp_out carries no per-feature mechanism: every feature's neurons write through
  it, so the paper expects one dense rank-d_mlp component there (about d_mlp subcomponents, none of
  them specific to a feature). With two blocks ("cross-layer") the same computation is spread over both
  layers' neurons.

A mechanism whose norm in a matrix is under 10% of that matrix's largest is not counted there (a
feature the model never learned, or a feature one layer of a cross-layer model does not compute).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch import Tensor, nn

BatchFn = Callable[[torch.Generator], Tensor]
MIN_MECHANISM_NORM = 0.1  # relative to the largest mechanism of the same matrix
TRAINING_VERSION = 1  # bump when the training code changes what a spec trains into (cached toys are keyed by it)
TRAIN_LR_FLOOR = 0.05  # the toys' training lr decays (cosine, no warmup) to this fraction of spec.lr


@dataclass
class ToySpec:
    """How to build one toy model: its kind and sizes, data sparsity and training schedule."""

    name: str
    kind: str  # "tms" or "resid_mlp"
    n_features: int
    d_hidden: int  # TMS hidden width; residual MLP neurons per layer
    p_present: float
    n_layers: int = 1
    d_embed: int = 0  # residual MLP only
    train_steps: int = 2000
    train_batch: int = 1024
    lr: float = 1e-2
    # Residual MLP labels x + relu(k_f·x_f): k_f = 1 as in the SPD paper and its reference (use_trivial_label_coeffs),
    # or k_f ~ U[1, 2]. SPD of the 20-feature toy (its recipe, two decomposition seeds) left 4 of 20 features
    # merged with k ~ U[1, 2], and 0 and 2 with k = 1.
    random_label_coeffs: bool = False


SPECS: dict[str, ToySpec] = {
    s.name: s
    for s in [
        ToySpec("tms-5-2", "tms", 5, 2, 0.05),
        ToySpec("tms-40-10", "tms", 40, 10, 0.05, train_steps=3000),
        # The SPD paper's compressed computation has 100 features, 50 neurons, p 0.01 and d_embed 1000;
        # d_embed 200 keeps training to seconds on one CPU thread (embedding overlaps ≈ 0.07 rather than 0.03).
        ToySpec("resid-mlp-100-50", "resid_mlp", 100, 50, 0.01, d_embed=200, train_steps=1500, train_batch=512, lr=3e-3),
        ToySpec("resid-mlp-2x25", "resid_mlp", 100, 25, 0.01, n_layers=2, d_embed=200, train_steps=1500, train_batch=512, lr=3e-3),
        # Small enough for the default test tier.
        ToySpec("resid-mlp-20-10", "resid_mlp", 20, 10, 0.05, d_embed=100, train_steps=2000, train_batch=1024, lr=3e-3),
    ]
}


class TMS(nn.Module):
    """relu(W_out(W_in x)): n features squeezed through d hidden dimensions."""

    def __init__(self, n_features: int, d_hidden: int):
        super().__init__()
        self.W_in = nn.Linear(n_features, d_hidden, bias=False)
        self.W_out = nn.Linear(d_hidden, n_features, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.W_out(self.W_in(x)))


class MLPBlock(nn.Module):
    def __init__(self, d_embed: int, d_mlp: int):
        super().__init__()
        self.mlp_in = nn.Linear(d_embed, d_mlp, bias=False)
        self.mlp_out = nn.Linear(d_mlp, d_embed, bias=False)

    def forward(self, r: Tensor) -> Tensor:
        return r + self.mlp_out(torch.relu(self.mlp_in(r)))


class ResidMLP(nn.Module):
    """Features → residual stream (fixed W_E, unit rows) → MLP blocks → W_Eᵀ readout."""

    W_E: Tensor

    def __init__(self, n_features: int, d_embed: int, d_mlp: int, n_layers: int, gen: torch.Generator):
        super().__init__()
        W_E = torch.randn(n_features, d_embed, generator=gen)
        self.register_buffer("W_E", W_E / W_E.norm(dim=1, keepdim=True))
        self.layers = nn.ModuleList([MLPBlock(d_embed, d_mlp) for _ in range(n_layers)])

    def forward(self, x: Tensor) -> Tensor:
        r = x @ self.W_E
        for layer in self.layers:
            r = layer(r)
        return r @ self.W_E.T


def sparse_features(gen: torch.Generator, batch: int, n: int, p: float, low: float) -> Tensor:
    """Each feature independently present with probability p, with a value uniform in [low, 1]."""
    present = torch.rand(batch, n, generator=gen) < p
    return present * (low + (1 - low) * torch.rand(batch, n, generator=gen))


def toy_batches(spec: ToySpec, batch_size: int) -> BatchFn:
    """The toy's data: sparse features with values in [0, 1] (TMS) or [-1, 1] (residual MLP)."""
    low = 0.0 if spec.kind == "tms" else -1.0
    return lambda gen: sparse_features(gen, batch_size, spec.n_features, spec.p_present, low)


@dataclass
class Toy:
    """A trained toy model (frozen and in eval mode, however it was made), its data, and its ground truth per decomposed matrix."""

    spec: ToySpec
    model: nn.Module
    seed: int
    label_coeffs: Tensor | None = None

    def __post_init__(self) -> None:
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def batches(self, batch_size: int = 1024) -> BatchFn:
        return toy_batches(self.spec, batch_size)

    @property
    def matrices(self) -> list[str]:
        if self.spec.kind == "tms":
            return ["W_in", "W_out"]
        return [f"layers.{i}.{m}" for i in range(self.spec.n_layers) for m in ("mlp_in", "mlp_out")]

    def weight(self, name: str) -> Tensor:
        return cast(nn.Linear, self.model.get_submodule(name)).weight.detach()

    def feature_read(self, name: str) -> Tensor | None:
        """(d_in, n_features): the matrix's input directions of the features, when its mechanisms are
        compared in feature coordinates (W·feature_read); None: compared as the weight itself."""
        if self.spec.kind == "resid_mlp" and name.endswith("mlp_in"):
            return cast(ResidMLP, self.model).W_E.T
        return None

    def dense_rank(self, name: str) -> int:
        """Subcomponents expected in a matrix with one dense mechanism (residual MLP mlp_out: d_mlp); 0 for the others."""
        return self.spec.d_hidden if self.spec.kind == "resid_mlp" and name.endswith("mlp_out") else 0

    def mechanisms(self) -> dict[str, dict[int, Tensor]]:
        """Matrix → {feature: the part of the weight that carries it}, small parts left out; {} for a dense matrix.

        TMS: (d_out, d_in) parts of the weight. Residual MLP mlp_in: (d_mlp, n_features) parts of W·W_Eᵀ
        (column f only), to be compared with components mapped the same way (`feature_read`).
        """
        out: dict[str, dict[int, Tensor]] = {}
        for name in self.matrices:
            if self.dense_rank(name):
                out[name] = {}
                continue
            w = self.weight(name)
            read = self.feature_read(name)
            if read is not None:
                w = w @ read
            parts = {}
            for f in range(self.spec.n_features):
                keep = torch.zeros_like(w)
                if name == "W_out":
                    keep[f, :] = w[f, :]
                else:
                    keep[:, f] = w[:, f]
                parts[f] = keep
            largest = max(p.norm() for p in parts.values())
            out[name] = {f: p for f, p in parts.items() if p.norm() >= MIN_MECHANISM_NORM * largest}
        return out

    @property
    def n_mechanisms(self) -> int:
        """Features with a mechanism in at least one matrix."""
        return len({f for parts in self.mechanisms().values() for f in parts})


def _untrained(spec: ToySpec, seed: int, gen: torch.Generator) -> nn.Module:
    """The toy's architecture with initial weights from `seed` (the global generator is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if spec.kind == "tms":
            return TMS(spec.n_features, spec.d_hidden)
        return ResidMLP(spec.n_features, spec.d_embed, spec.d_hidden, spec.n_layers, gen)


def _fit(params: list[Tensor], loss_of: Callable[[Tensor], Tensor], spec: ToySpec, gen: torch.Generator) -> None:
    """Adam on `params` for spec.train_steps batches of the toy's data drawn from `gen`."""
    from decompose.train import cosine_schedule

    opt = torch.optim.Adam(params, lr=spec.lr)
    batches = toy_batches(spec, spec.train_batch)
    for i in range(spec.train_steps):
        for group in opt.param_groups:
            group["lr"] = cosine_schedule(spec.lr, i, spec.train_steps, TRAIN_LR_FLOOR)
        loss = loss_of(batches(gen))
        opt.zero_grad()
        loss.backward()
        opt.step()


def _train_tms(spec: ToySpec, seed: int) -> tuple[nn.Module, None]:
    """Tied weights (W_out = W_inᵀ), as in the original TMS, then untied; untied training from a random
    start often lets a feature die behind the ReLU or leaves an irregular polygon."""
    gen = torch.Generator().manual_seed(seed)
    model = cast(TMS, _untrained(spec, seed, gen))
    w, b = model.W_in.weight, model.W_out.bias
    with torch.no_grad():
        b.zero_()
    _fit([w, b], lambda x: (torch.relu(x @ w.T @ w + b) - x).pow(2).mean(), spec, gen)
    with torch.no_grad():
        model.W_out.weight.copy_(w.T)
    return model, None


def resid_labels(x: Tensor, coeffs: Tensor) -> Tensor:
    """x_f + relu(k_f·x_f): the identity through the residual plus one ReLU per feature."""
    return x + torch.relu(coeffs * x)


def _train_resid_mlp(spec: ToySpec, seed: int) -> tuple[nn.Module, Tensor]:
    """The fixed W_E, the label coefficients k_f and then the batches all come from one generator."""
    gen = torch.Generator().manual_seed(seed)
    model = _untrained(spec, seed, gen)
    coeffs = 1 + torch.rand(spec.n_features, generator=gen) if spec.random_label_coeffs else torch.ones(spec.n_features)
    _fit(list(model.parameters()), lambda x: (model(x) - resid_labels(x, coeffs)).pow(2).mean(), spec, gen)
    return model, coeffs


def train_toy(name: str, seed: int = 0) -> Toy:
    """Build and train toy model `name` (a key of SPECS) from `seed`; deterministic on CPU."""
    if name not in SPECS:
        raise KeyError(f"unknown toy model {name!r}; known: {', '.join(SPECS)}")
    spec = SPECS[name]
    model, coeffs = (_train_tms if spec.kind == "tms" else _train_resid_mlp)(spec, seed)
    return Toy(spec, model, seed, coeffs)


def cache_path(name: str, seed: int, cache_dir: Path) -> Path:
    """cache_dir/<name>-seed<seed>-<digest>.pt; the digest covers the spec and TRAINING_VERSION, so a changed
    spec or training procedure trains a new toy instead of reading stale weights."""
    spec = SPECS[name]
    digest = hashlib.sha1(f"{TRAINING_VERSION} {dataclasses.astuple(spec)}".encode()).hexdigest()[:10]
    return cache_dir / f"{name}-seed{seed}-{digest}.pt"


def cached_toy(name: str, seed: int, cache_dir: Path) -> Toy:
    """train_toy, with the trained weights kept in `cache_path` for the next call."""
    path = cache_path(name, seed, cache_dir)
    if path.is_file():
        spec = SPECS[name]
        state = torch.load(path, weights_only=True)
        model = _untrained(spec, seed, torch.Generator())
        model.load_state_dict(state["model"])
        return Toy(spec, model, seed, state.get("label_coeffs"))
    toy = train_toy(name, seed)
    cache_dir.mkdir(parents=True, exist_ok=True)
    state = {"model": toy.model.state_dict()}
    if toy.label_coeffs is not None:
        state["label_coeffs"] = toy.label_coeffs
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").rename(path)
    return toy
