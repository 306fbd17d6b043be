"""The decomposition recipe: which matrices with how many components, the CI function, losses and schedule."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from decompose.apd_config import ApdSettings
from decompose.ci_fns import CIFnConfig
from decompose.ci_fns.shared_mlp import SharedMlpConfig
from decompose.config_base import BaseConfig
from decompose.losses import FaithfulnessConfig, ImportanceMinimalityConfig, LossConfig, ReconConfig
from decompose.losses.persistent_pgd_recon import PersistentPgdReconConfig
from decompose.losses.pgd_recon import PgdReconConfig

Method = Literal["vpd", "spd", "apd"]
ADVERSARIAL = (PgdReconConfig, PersistentPgdReconConfig)


class EvalSettings(BaseConfig):
    every: PositiveInt = Field(500, description="Evaluate every N main steps (and at the end).")
    batches: PositiveInt = Field(2, description="Evaluation batches (held fixed for the whole run).")
    pgd_steps: PositiveInt = Field(20, description="Fresh-PGD eval: sign-ascent steps (shared source, all matrices).")
    pgd_step_size: float = Field(0.1, gt=0, description="Fresh-PGD eval step size.")
    alive_threshold: float = Field(1e-6, ge=0, description="A component is alive if its mean CI over the eval tokens exceeds this.")


class DecomposeConfig(BaseConfig):
    """Every default in one place; recipes override fields, `--set a.b=c` overrides recipes."""

    name: str = Field("decomposition", description="Run name, recorded in the manifest.")
    method: Method = Field(
        "vpd",
        description="vpd: every listed loss; spd: the same without the adversarial (pgd) reconstruction losses; "
        "apd: parameter components across all matrices trained by the `apd` settings (the loss list is not used).",
    )
    targets: dict[str, PositiveInt] = Field(
        default_factory=dict,
        description="fnmatch pattern over module names → C. Empty: the architecture's attention and MLP matrices.",
    )
    default_C: PositiveInt = Field(256, description="C for every matrix when `targets` is empty.")
    ci_fn: CIFnConfig = Field(default_factory=SharedMlpConfig, description="Causal-importance function.")
    losses: list[LossConfig] = Field(default_factory=list, description="Loss terms with their coefficients (vpd and spd).")
    apd: ApdSettings = Field(default_factory=ApdSettings, description="APD's components and losses (method apd only).")
    output_loss: Literal["kl", "mse"] = Field("kl", description="KL to the target's next-token distribution (LMs) or MSE (toy models).")
    steps: PositiveInt = Field(2000, description="Main training steps (after the faithfulness warmup).")
    batch_size: PositiveInt = Field(8, description="Sequences per step.")
    seq_len: PositiveInt = Field(128, description="Tokens per sequence.")
    lr: float = Field(1e-3, gt=0, description="AdamW peak learning rate (U, V and the CI function).")
    # Constant by default: on tiny-toxic (1,000 steps, same seed) a constant rate reached CI-masked KL 1.30
    # against 1.47 with cosine decay to 0.1, and was better without the clip too (benchmarks/results/defaults-ab.md).
    lr_final_frac: float = Field(1.0, ge=0, le=1, description="Cosine decay to this fraction of lr (1: a constant rate).")
    lr_warmup_frac: float = Field(0.0, ge=0, le=1, description="Linear lr warmup, as a fraction of steps.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    # Kept: with a constant rate, the clip 0.01 beat no clip on every measure (CI-masked KL 1.300 vs 1.332,
    # PGD KL 5.09 vs 5.72, L0 98.7 vs 104.7; benchmarks/results/defaults-ab.md).
    grad_clip_components: float | None = Field(0.01, description="Global grad-norm clip over U and V only (None: off).")
    sigmoid_alpha: float = Field(0.01, gt=0, description="Leak of the lower/upper leaky hard sigmoids.")
    seed: int = Field(0, description="Seeds components, CI function, data order, masks and adversary.")
    threads: PositiveInt | None = Field(None, description="torch CPU threads (None: torch's default).")
    compile: bool = Field(False, description="torch.compile the elementwise CI chain (sigmoids + importance sums): faster steps, ~20 s to compile.")
    autocast_bf16: bool = Field(True, description="bf16 autocast on CUDA (CPU always runs float32).")
    checkpoint_every: PositiveInt = Field(500, description="Save a resumable checkpoint every N steps (warmup included).")
    keep_checkpoints: bool = Field(True, description="Keep the last checkpoint in the finished directory.")
    eval: EvalSettings = Field(default_factory=EvalSettings)
    init_from: str | None = Field(None, description="Start from this finished decomposition's U, V and CI function (a continuation); pair with no warmup.")

    @model_validator(mode="after")
    def _one_of_each(self) -> DecomposeConfig:
        kinds = [loss.kind for loss in self.losses]
        dupes = {k for k in kinds if kinds.count(k) > 1}
        if dupes:
            raise ValueError(f"loss kinds listed twice: {sorted(dupes)}")
        if self.method == "apd":
            return self
        if not self.recon:
            needed = "stochastic_recon (spd drops the adversarial ones)" if self.method == "spd" else "stochastic_recon, pgd_recon, persistent_pgd_recon"
            raise ValueError(f"at least one reconstruction loss is needed: {needed}")
        return self

    def loss(self, cls: type) -> object | None:
        return next((loss for loss in self.losses if isinstance(loss, cls)), None)

    @property
    def faithfulness(self) -> FaithfulnessConfig | None:
        return self.loss(FaithfulnessConfig)  # type: ignore[return-value]

    @property
    def warmup(self) -> tuple[int, float]:
        """(steps, lr) of the faithfulness-only warmup: APD's own settings, else the faithfulness loss's (no warmup without one)."""
        if self.method == "apd":
            return self.apd.warmup_steps, self.apd.warmup_lr
        faith = self.faithfulness
        return (faith.warmup_steps, faith.warmup_lr) if faith else (0, FaithfulnessConfig().warmup_lr)

    @property
    def importance(self) -> ImportanceMinimalityConfig | None:
        return self.loss(ImportanceMinimalityConfig)  # type: ignore[return-value]

    @property
    def recon(self) -> list[ReconConfig]:
        """The reconstruction losses this method trains with (spd: the non-adversarial ones)."""
        recon = [loss for loss in self.losses if isinstance(loss, ReconConfig)]
        if self.method == "spd":
            recon = [loss for loss in recon if not isinstance(loss, ADVERSARIAL)]
        return recon  # type: ignore[return-value]
