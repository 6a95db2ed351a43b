"""The workbench's Jupyter UI: one app (`Workbench`) and the panels it is made of.

```python
from widgets import Workbench
Workbench(run="my-run")          # in a notebook cell
```
Panels are importable on their own too (each takes the shared `workbench.session.Session`).
"""

from widgets.app import AnswersPanel, Workbench
from widgets.collapse import CollapsePanel
from widgets.dashboard import DiversityPanel
from widgets.export_panel import ExportPanel
from widgets.inspector import InspectorPanel
from widgets.selfinstruct import SeedsPanel, SelfInstructPanel

__all__ = [
    "AnswersPanel",
    "CollapsePanel",
    "DiversityPanel",
    "ExportPanel",
    "InspectorPanel",
    "SeedsPanel",
    "SelfInstructPanel",
    "Workbench",
]
