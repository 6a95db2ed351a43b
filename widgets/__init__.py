"""The workbench's Jupyter UI: one app (`Workbench`) and the panels it is made of.

```python
from widgets import Workbench
Workbench(run="my-run")          # in a notebook cell
```
Panels are importable on their own too (each takes the shared `workbench.session.Session`).
"""

from widgets.answers_panel import AnswersPanel
from widgets.app import Workbench
from widgets.collapse import CollapsePanel
from widgets.compare_panel import ComparePanel
from widgets.dashboard import DiversityPanel
from widgets.evolve_panel import EvolvePanel
from widgets.export_panel import ExportPanel
from widgets.filters_panel import FilterPanel
from widgets.inspector import InspectorPanel
from widgets.magpie_panel import MagpiePanel
from widgets.selfinstruct import SeedsPanel, SelfInstructPanel

__all__ = [
    "AnswersPanel",
    "CollapsePanel",
    "ComparePanel",
    "DiversityPanel",
    "EvolvePanel",
    "ExportPanel",
    "FilterPanel",
    "InspectorPanel",
    "MagpiePanel",
    "SeedsPanel",
    "SelfInstructPanel",
    "Workbench",
]
