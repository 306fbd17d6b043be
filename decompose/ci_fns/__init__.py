"""Causal-importance functions: pre-weight activations of every matrix → pre-sigmoid CI per component."""

from typing import Annotated

from pydantic import Field

from decompose.ci_fns.global_transformer import GlobalTransformerConfig
from decompose.ci_fns.shared_mlp import SharedMlpConfig

CIFnConfig = Annotated[SharedMlpConfig | GlobalTransformerConfig, Field(discriminator="kind")]
