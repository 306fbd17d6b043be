"""Loss terms, one file each. Adding one: a new file with its config, and one entry in LossConfig."""

from typing import Annotated

from pydantic import Field

from decompose.losses.faithfulness import FaithfulnessConfig
from decompose.losses.importance_minimality import ImportanceMinimalityConfig
from decompose.losses.persistent_pgd_recon import PersistentPgdReconConfig
from decompose.losses.pgd_recon import PgdReconConfig
from decompose.losses.stochastic_recon import StochasticReconConfig

ReconConfig = StochasticReconConfig | PgdReconConfig | PersistentPgdReconConfig
LossConfig = Annotated[
    FaithfulnessConfig | ImportanceMinimalityConfig | StochasticReconConfig | PgdReconConfig | PersistentPgdReconConfig,
    Field(discriminator="kind"),
]
