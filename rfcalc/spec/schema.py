"""The JSON Schema of a spec file, for editors (yaml-language-server) to complete and validate YAML."""
from __future__ import annotations

import functools
import operator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from rfcalc.spec.models import LAYER_MODELS, NAME_PATTERN, SpecFile
from rfcalc.spec.train import TrainConfig

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class UseLayer(BaseModel):
    """`{use: BLOCK, name: ..., repeat: ..., <block params>}`: expands a block from `blocks:`."""

    model_config = ConfigDict(extra="allow")

    use: str
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    repeat: int = Field(default=1, ge=1)


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a v1 spec file; layers, paths, body and shortcut are typed recursively."""
    template = "#/$defs/{model}"
    schema = SpecFile.model_json_schema(ref_template=template)
    models = tuple(dict.fromkeys(LAYER_MODELS.values())) + (UseLayer,)
    layer_type: Any = functools.reduce(operator.or_, models)  # Union[...] of the models, built at run time
    layer = TypeAdapter(layer_type).json_schema(ref_template=template)
    train = TypeAdapter(TrainConfig | None).json_schema(ref_template=template)  # SpecFile holds `train:` as written
    top_defs = {**schema.get("$defs", {}), **train.pop("$defs", {})}
    schema["properties"]["train"] = {**train, "default": None}
    defs: dict[str, Any] = dict(sorted(top_defs.items()))
    schema["$defs"] = defs
    defs.update(layer.pop("$defs", {}))
    defs["Layer"] = layer
    ref = {"$ref": "#/$defs/Layer"}
    schema["properties"]["layers"]["items"] = ref
    defs["ParallelLayer"]["properties"]["paths"]["items"]["items"] = ref
    defs["ResidualLayer"]["properties"]["body"]["items"] = ref
    defs["ResidualLayer"]["properties"]["shortcut"]["anyOf"][0]["items"] = ref
    schema["$schema"] = SCHEMA_DIALECT
    schema["title"] = "rfcalc spec, version 1"
    return schema
