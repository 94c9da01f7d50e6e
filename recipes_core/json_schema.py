"""The recipe model as a JSON Schema, committed beside the code for editors and CI."""

from __future__ import annotations

import json
from pathlib import Path

from recipes_core.model import Recipe

SCHEMA_PATH = Path(__file__).with_name("recipe.schema.json")


def recipe_json_schema() -> str:
    schema = Recipe.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://arco-recipes.invalid/schemas/recipe.schema.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> None:
    path.write_text(recipe_json_schema(), encoding="utf-8")


if __name__ == "__main__":
    write_schema()
