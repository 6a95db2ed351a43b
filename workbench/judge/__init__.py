"""The judge lab: rubrics, constrained judges with score distributions, calibration, bias, preferences.

```python
from workbench.judge import Rubric, JudgeConfig, run_absolute_judge, build_dpo_pairs
rubric = Rubric(name="helpful", task_description="...", criteria=["..."], levels={1: "...", 5: "..."})
judgments = run_absolute_judge(backend, store, completions, rubric, JudgeConfig(max_tokens=48))
pairs = build_dpo_pairs(judgments, completions, min_margin=1.0)
```
"""

from .absolute import absolute_params, plan_absolute, run_absolute_judge, score_distributions
from .bias import bias_report
from .calibration import (
    Estimate,
    VersionComparison,
    bootstrap,
    cohens_kappa,
    compare_versions,
    pearson,
    preference_agreement,
    score_agreement,
    spearman,
)
from .config import JudgeConfig
from .distribution import ScoreStats, ValueDistribution, score_stats, value_distribution
from .grammar import score_grammar, verdict_grammar
from .pairwise import (
    flip_rates,
    make_pairs,
    pair_id,
    pair_outcomes,
    pairs_within_groups,
    plan_pairwise,
    run_pairwise_judge,
)
from .parsing import Parsed, parse_counts, parse_failures, parse_score, parse_verdict
from .preferences import aggregate_aspects, best_of_n, build_dpo_pairs, scored_completions
from .rubric import (
    DEFAULT_ABSOLUTE_TEMPLATE,
    DEFAULT_PAIRWISE_TEMPLATE,
    Rubric,
    RubricError,
    ScoreLevel,
    likert_rubric,
    load_rubrics,
    record_rubric,
)
from .runner import JUDGMENT_COLUMNS, judgments_in, with_judgment_schema
from .summary import judgeable_rows, sample_rows, score_histogram, version_labels

__all__ = [
    "DEFAULT_ABSOLUTE_TEMPLATE",
    "DEFAULT_PAIRWISE_TEMPLATE",
    "JUDGMENT_COLUMNS",
    "Estimate",
    "JudgeConfig",
    "Parsed",
    "Rubric",
    "RubricError",
    "ScoreLevel",
    "ScoreStats",
    "ValueDistribution",
    "VersionComparison",
    "absolute_params",
    "aggregate_aspects",
    "best_of_n",
    "bias_report",
    "bootstrap",
    "build_dpo_pairs",
    "cohens_kappa",
    "compare_versions",
    "flip_rates",
    "judgeable_rows",
    "judgments_in",
    "likert_rubric",
    "load_rubrics",
    "make_pairs",
    "pair_id",
    "pair_outcomes",
    "pairs_within_groups",
    "parse_counts",
    "parse_failures",
    "parse_score",
    "parse_verdict",
    "pearson",
    "plan_absolute",
    "plan_pairwise",
    "preference_agreement",
    "record_rubric",
    "run_absolute_judge",
    "run_pairwise_judge",
    "sample_rows",
    "score_agreement",
    "score_distributions",
    "score_grammar",
    "score_histogram",
    "score_stats",
    "scored_completions",
    "spearman",
    "value_distribution",
    "verdict_grammar",
    "version_labels",
    "with_judgment_schema",
]
