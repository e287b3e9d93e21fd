"""The JSON Schema of a sweep file (editors complete and check it as you type); an inline `spec:` is checked
against the spec's own schema."""
from __future__ import annotations

from typing import Any

from rfcalc.spec.schema import SCHEMA_DIALECT, spec_json_schema
from rfcalc.sweep.model import SweepFile


def sweep_json_schema() -> dict[str, Any]:
    template = "#/$defs/{model}"
    schema = SweepFile.model_json_schema(ref_template=template)
    spec = spec_json_schema()
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    defs.update(spec.pop("$defs", {}))
    for key in ("$schema", "title"):
        spec.pop(key, None)
    defs["Spec"] = spec
    schema["properties"]["spec"] = {"anyOf": [{"type": "string", "minLength": 1, "description": "a spec file, "
                                               "relative to the sweep file"}, {"$ref": "#/$defs/Spec"}],
                                    "description": schema["properties"]["spec"].get("description", "")}
    duration = r"^\s*[0-9]+(\.[0-9]+)?\s*(s|m|min|h)?\s*$"
    schema["properties"]["timeout"] = {"anyOf": [{"type": "number", "exclusiveMinimum": 0},
                                                 {"type": "string", "pattern": duration}, {"type": "null"}],
                                       "description": "seconds, or 90s, 3m, 1.5h"}
    schema["properties"]["objective"] = {"anyOf": [{"const": "accuracy"},
                                                   {"type": "array", "prefixItems": [{"const": "accuracy"},
                                                                                     {"enum": ["params", "macs"]}],
                                                    "minItems": 2, "maxItems": 2}],
                                         "default": "accuracy"}
    schema["$schema"] = SCHEMA_DIALECT
    schema["title"] = "rfcalc sweep file, version 1"
    return schema
