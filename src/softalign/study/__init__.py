"""``softalign study``: the fixed-vector vs attention experiment as one command.

One model per attention variant (``none`` = RNNenc's fixed context vector; ``additive``,
``dot``, ``scaled_dot``, ``general`` = RNNsearch-style soft attention), trained with the same
data, size, seed and budget, evaluated on the same test set, reported in ``report.html``.
"""

from softalign.study.plan import StudyPlan, load_plan
from softalign.study.report import build_report
from softalign.study.runner import run_study

__all__ = ["StudyPlan", "build_report", "load_plan", "run_study"]
