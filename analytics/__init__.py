"""Analytics: survival, toxicity and response outputs, pooled and per centre, from a cohort snapshot.

Verbs: `read_snapshot` (the cohort tables), `analyse` (every table, figure and the report, under the plan's
`OutputPolicy`). The estimators
(`KaplanMeier`, `LogRankTest`, `CoxModel`) follow lifelines: `fit` returns self, results are attributes.
"""

from analytics.analysis import AnalysisResult, analyse
from analytics.cohort import CohortData, read_snapshot
from analytics.cox import CoxModel
from analytics.kaplan_meier import KaplanMeier
from analytics.logrank import LogRankTest
from analytics.plan import AnalysisPlan, Factor
from analytics.policy import UNPROTECTED, OutputPolicy
from analytics.proportions import compare_groups, exact_rate
from analytics.releases import ReleaseLedger

__all__ = ["UNPROTECTED", "AnalysisPlan", "AnalysisResult", "CohortData", "CoxModel", "Factor", "KaplanMeier",
           "LogRankTest", "OutputPolicy", "ReleaseLedger", "analyse", "compare_groups", "exact_rate", "read_snapshot"]
