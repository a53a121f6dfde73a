"""SparseML-syntax recipes: parse, resolve variables safely, validate modifiers."""

from sparsecore.recipe.load import ZOO_RECIPES, builtin_names, load_recipe, parse_recipe_args
from sparsecore.recipe.model import Recipe

__all__ = ["Recipe", "ZOO_RECIPES", "builtin_names", "load_recipe", "parse_recipe_args"]
