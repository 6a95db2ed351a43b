"""Pipeline: replay what was prototyped, headless or scaled out.

- `recipe`: a recipe file (YAML/JSON) holds the model, seeds, steps with their settings and exports.
- `runner`: `run_recipe` runs a recipe's steps in order against one run directory, resumably.
- `plan`: `plan_recipe`, the dry run: row counts, and each step previewed and priced on this machine.
- `cli`: `workbench run RECIPE` (`--dry-run`, `--resume`) and `workbench export`.
- `scale`: the same recipe on a Ray cluster whose workers call OpenAI-compatible servers (vLLM, llama.cpp).
"""

from .plan import plan_recipe
from .recipe import Recipe, RecipeError, load_recipe
from .runner import run_recipe

__all__ = ["Recipe", "RecipeError", "load_recipe", "plan_recipe", "run_recipe"]
