"""Self-instruct (Wang et al., 2022): grow an instruction pool from seed tasks with the model itself.

- `config`: `SelfInstructConfig`, every knob of a run.
- `prompts`: few-shot prompt building (k human + m machine examples), seeded sampling, sandboxed templates.
- `parsing`: robust parsing of what a base model writes.
- `decide`: keep/drop decisions (`PoolFilter`) and `apply_similarity_threshold` for the slider.
- `pipeline`: `run_self_instruct`, the bootstrap rounds, resumable from the run directory.
- `instances`: input/output generation for accepted instructions (output-first for classification).

Magpie (`workbench.generate.magpie`) sits beside this package and shares its candidate loop (`candidates`).
"""

from .config import DEFAULT_INSTANCE_PARAMS, DEFAULT_INSTRUCTION_PARAMS, SelfInstructConfig
from .decide import NEAR_DUPLICATE, PoolFilter, apply_similarity_threshold
from .instances import run_instances
from .parsing import ParsedInstance, parse_instance, parse_instruction
from .pipeline import run_self_instruct
from .prompts import (
    DEFAULT_TEMPLATE,
    TemplateError,
    build_instance_prompt,
    build_instruction_prompt,
    compile_template,
    sample_examples,
)

__all__ = [
    "DEFAULT_INSTANCE_PARAMS",
    "DEFAULT_INSTRUCTION_PARAMS",
    "DEFAULT_TEMPLATE",
    "NEAR_DUPLICATE",
    "ParsedInstance",
    "PoolFilter",
    "SelfInstructConfig",
    "TemplateError",
    "apply_similarity_threshold",
    "build_instance_prompt",
    "build_instruction_prompt",
    "compile_template",
    "parse_instance",
    "parse_instruction",
    "run_instances",
    "run_self_instruct",
    "sample_examples",
]
