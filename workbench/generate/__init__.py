"""Generate: everything that makes new rows with a model, in the order a pipeline uses it.

- `seeds`: the human-written seed tasks generation starts from (files, `datasets.Dataset`, the shipped sets).
- `selfinstruct`: self-instruct (Wang et al., 2022), the bootstrap rounds that grow an instruction pool, and the one
  candidate-filter-and-record loop (`selfinstruct.candidates`) that Magpie shares; `selfinstruct.instances` writes
  input/output instances for accepted instructions (output-first for classification).
- `magpie`: user turns from a chat template's pre-query prefix alone (Xu et al., 2024), for chat models.
- `evolve`: evol-instruct rewrites (deepen, constrain, concretise, breadth) with lineage; `evolve_lineage` reads a
  run's evolutions as chains of prompts and operators, with the drops' reasons.
- `completions`: answers to prompts, from a teacher (distillation), k samples per prompt.
- `conversation`: multi-turn conversations, one row each: single-turn rows extended by a user simulator and
  the assistant (`extend_conversations`); Magpie's `n_turns` grows its user turns into conversations.

Rows go to the run directory (`workbench.runs`); what filters them is `workbench.filters`, what grades them is
`workbench.judge`.
"""

from .completions import (
    DEFAULT_COMPLETION_TEMPLATE,
    CompletionConfig,
    plan_completions,
    prompt_records,
    render_template,
    run_completions,
)
from .conversation import DEFAULT_USER_SIMULATOR_TEMPLATE, ConversationConfig, extend_conversations
from .evolve import EvolveConfig, lineage, run_evolution
from .evolve_lineage import drop_reasons, lineage_frame
from .magpie import MagpieConfig, magpie_prefix, next_user_prefix, run_magpie
from .samplers import (
    DEFAULT_PERSONAS,
    CategorySampler,
    PersonaSampler,
    RangeSampler,
    SamplerSpec,
    SubcategorySampler,
    attribute_columns,
)
from .seeds import SeedFormatError, default_seeds, load_seeds, seeds_to_records, self_instruct_seeds
from .selfinstruct import (
    DEFAULT_INSTANCE_PARAMS,
    DEFAULT_INSTRUCTION_PARAMS,
    SelfInstructConfig,
    apply_similarity_threshold,
    run_instances,
    run_self_instruct,
)

__all__ = [
    "DEFAULT_COMPLETION_TEMPLATE",
    "DEFAULT_INSTANCE_PARAMS",
    "DEFAULT_INSTRUCTION_PARAMS",
    "DEFAULT_PERSONAS",
    "DEFAULT_USER_SIMULATOR_TEMPLATE",
    "CategorySampler",
    "CompletionConfig",
    "ConversationConfig",
    "EvolveConfig",
    "MagpieConfig",
    "PersonaSampler",
    "RangeSampler",
    "SamplerSpec",
    "SeedFormatError",
    "SelfInstructConfig",
    "SubcategorySampler",
    "apply_similarity_threshold",
    "attribute_columns",
    "default_seeds",
    "drop_reasons",
    "extend_conversations",
    "lineage",
    "lineage_frame",
    "load_seeds",
    "magpie_prefix",
    "next_user_prefix",
    "plan_completions",
    "prompt_records",
    "render_template",
    "run_completions",
    "run_evolution",
    "run_instances",
    "run_magpie",
    "run_self_instruct",
    "seeds_to_records",
    "self_instruct_seeds",
]
