"""The judge lab: rubrics, constrained judges with score distributions, calibration, bias, preferences.

```python
from workbench.judge import Rubric, JudgeConfig, run_absolute_judge, build_dpo_pairs
rubric = Rubric(name="helpful", task_description="...", criteria=["..."], levels={1: "...", 5: "..."})
judgments = run_absolute_judge(backend, store, completions, rubric, JudgeConfig(max_tokens=48))
report = judge_report(judgments, store, pairs=pairs)   # agreement + CI beside random/first/longest/shortest
pairs = build_dpo_pairs(judgments, completions, min_margin=1.0)
```
"""

from .absolute import absolute_params, plan_absolute, run_absolute_judge, score_distributions
from .bias import bias_report
from .calibrated import calibrated_judge, fit_logistic
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
from .conversation import ConversationTarget, conversation_rubric, judgeable_conversations
from .decisions import (
    Decisions,
    consistent_decisions,
    decisions_from_judgments,
    pointwise_decisions,
    probability_decisions,
)
from .distribution import ScoreStats, ValueDistribution, score_stats, value_distribution
from .fewshot import FEWSHOT_PAIRWISE_TEMPLATE, fewshot_rubric, with_examples
from .grammar import score_grammar, verdict_grammar
from .jury import jury
from .lab import LAB_METHODS, LabConfig, LabResult, judge_the_judge, labelled_pairs, shipped_pairs
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
from .preference_data import (
    load_answer_pairs,
    load_preference_pairs,
    preference_pairs,
    split_dialogue,
    split_pairs,
)
from .preferences import aggregate_aspects, best_of_n, build_dpo_pairs, scored_completions
from .report import (
    BASELINES,
    ConfigComparison,
    JudgeReport,
    compare_configs,
    human_preferences,
    judge_report,
    report_chart,
)
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
from .version_diff import version_difference

__all__ = [
    "BASELINES",
    "DEFAULT_ABSOLUTE_TEMPLATE",
    "DEFAULT_PAIRWISE_TEMPLATE",
    "FEWSHOT_PAIRWISE_TEMPLATE",
    "JUDGMENT_COLUMNS",
    "LAB_METHODS",
    "ConfigComparison",
    "ConversationTarget",
    "Decisions",
    "Estimate",
    "JudgeConfig",
    "JudgeReport",
    "LabConfig",
    "LabResult",
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
    "calibrated_judge",
    "cohens_kappa",
    "compare_configs",
    "compare_versions",
    "consistent_decisions",
    "conversation_rubric",
    "decisions_from_judgments",
    "fewshot_rubric",
    "fit_logistic",
    "flip_rates",
    "human_preferences",
    "judge_report",
    "judge_the_judge",
    "judgeable_conversations",
    "judgeable_rows",
    "judgments_in",
    "jury",
    "labelled_pairs",
    "likert_rubric",
    "load_answer_pairs",
    "load_preference_pairs",
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
    "pointwise_decisions",
    "preference_agreement",
    "preference_pairs",
    "probability_decisions",
    "record_rubric",
    "report_chart",
    "run_absolute_judge",
    "run_pairwise_judge",
    "sample_rows",
    "score_agreement",
    "score_distributions",
    "score_grammar",
    "score_histogram",
    "score_stats",
    "scored_completions",
    "shipped_pairs",
    "spearman",
    "split_dialogue",
    "split_pairs",
    "value_distribution",
    "verdict_grammar",
    "version_difference",
    "version_labels",
    "with_examples",
    "with_judgment_schema",
]
