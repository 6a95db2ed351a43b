"""Experiments that show an effect end to end, small enough to rerun in a notebook or a test.

`run_collapse` refits a word-level n-gram model on its own samples, generation after generation, in
three arms (replace / accumulate / mix), and measures it on held-out human text:

```python
from workbench.experiments import CollapseConfig, collapse_chart, contrast, run_collapse
result = run_collapse(CollapseConfig(generations=10, seeds=5))
contrast(result.per_seed, "replace", "accumulate")
collapse_chart(result.summary, result.reference)
```

`run_drift` is the in-context cousin on a real model: the self-instruct loop prompted with its own
previous outputs (replace) or with human examples mixed in (mix), with the same per-seed intervals.

`run_distillation` moves a behaviour from a teacher's system prompt into data (filtered by a rule) and
from the data into a student in context, with Wilson intervals on every rate.
"""

from .collapse import ARMS, METRICS, Arm, CollapseConfig, CollapseResult, collapse_corpus, run_collapse
from .distill import (
    STUDENT_ARMS,
    Behaviour,
    DistillConfig,
    DistillResult,
    StudentArm,
    run_distillation,
    student_prompt,
)
from .drift import DRIFT_ARMS, DRIFT_METRICS, DriftArm, DriftConfig, DriftResult, run_drift
from .ngram import Corpus, NGramModel, Vocabulary
from .proportions import rate_difference, wilson_interval
from .report import change, collapse_chart, contrast, summarize, t_quantile_975

__all__ = [
    "ARMS",
    "DRIFT_ARMS",
    "DRIFT_METRICS",
    "METRICS",
    "STUDENT_ARMS",
    "Arm",
    "Behaviour",
    "CollapseConfig",
    "CollapseResult",
    "Corpus",
    "DistillConfig",
    "DistillResult",
    "DriftArm",
    "DriftConfig",
    "DriftResult",
    "NGramModel",
    "StudentArm",
    "Vocabulary",
    "change",
    "collapse_chart",
    "collapse_corpus",
    "contrast",
    "rate_difference",
    "run_collapse",
    "run_distillation",
    "run_drift",
    "student_prompt",
    "summarize",
    "t_quantile_975",
    "wilson_interval",
]
