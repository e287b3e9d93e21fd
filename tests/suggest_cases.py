"""Bundled specs made to fail in one way each: the cases of the suggest tests and of bench/suggest_speed.py.

Each case is a copy of a bundled spec whose constraints (and, for a missing feature, whose layers) are changed so
that it fails exactly one rule: RF short, params over, MACs over, a required dilated or depthwise conv missing, a
forbidden max-pool present. Rules of the spec's own that the change happens to break as well (a spec whose
separable convs become plain convs goes over its parameter limit) are dropped, so that each case fails in its
one way; so are `eq` bounds (custom_resnet and ultimus pin the parameter count their reports print: a check of
the reproduction, which no design change can keep).

``all_single_edits`` lists every edit of every kind at every place of a spec, over ranges that include the
search's own, within the edit space a designer would use (written out here on its own, from docs/suggest.md):
widths that are multiples of 8 (or 1, 2, 4), cut to no less than half the layer's width and never below its input
channels when it expands them. The exhaustive search the oracle test compares `suggest` with also drops, after
evaluating them, a conv inserted before any conv (on the raw input: :func:`on_raw_input`) and a conv window
made wider than its input map (:func:`misfits`), and ranks a fix that cuts a width by more than a quarter
(:func:`starves`) after the others.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml

from rfcalc.analysis.checker import evaluate_rules, merge_constraints
from rfcalc.analysis.load import load_spec
from rfcalc.suggest import kinds
from rfcalc.suggest.edits import Edit, EditKind
from rfcalc.suggest.sites import find_sites, node_keys, row_site, scalar
from rfcalc.table.report import Report

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted(ROOT.glob("arch_specs/*.yaml")) + [ROOT / "examples" / "quickstart.yaml"]
KINDS = ("rf_short", "params_over", "macs_over", "no_dilated_conv", "no_depthwise_conv", "maxpool_present")


def _layers(data: dict[str, Any]):
    """Every layer dict of a raw spec: top level, nested, and in block definitions."""
    def walk(items: Any):
        for layer in items if isinstance(items, list) else []:
            if isinstance(layer, dict):
                yield layer
                for path in layer.get("paths") or []:
                    yield from walk(path)
                for key in ("body", "shortcut"):
                    yield from walk(layer.get(key))

    yield from walk(data["layers"])
    for block in (data.get("blocks") or {}).values():
        yield from walk(block["layers"])


def _undilate(data: dict[str, Any]) -> None:
    conv_defaults = (data.get("defaults") or {}).get("conv", {})
    for layer in _layers(data):
        if layer.get("op") != "conv":
            continue
        merged = {**conv_defaults, **layer}
        d, k, p = merged.get("dilation", 1), merged.get("k", 3), merged.get("padding", 0)
        if isinstance(d, int) and d > 1:
            layer["dilation"] = 1
            if isinstance(p, int):
                layer["padding"] = max(0, p - (d - 1) * (k - 1) // 2)


def _no_depthwise(data: dict[str, Any]) -> None:
    for layer in _layers(data):
        layer.pop("separable", None)
        if layer.get("groups") == "depthwise":
            del layer["groups"]


def _add_maxpool(data: dict[str, Any]) -> None:
    if any(layer.get("op") == "maxpool" for layer in _layers(data)):
        return
    at = next(i for i, layer in enumerate(data["layers"]) if layer.get("op") in ("gap", "flatten"))
    data["layers"].insert(at, {"op": "maxpool", "name": "mp", "k": 2})


def made_to_fail(data: dict[str, Any], kind: str) -> tuple[dict[str, Any], str]:
    """A copy of ``data`` that fails in the way ``kind`` names, and the name of the rule it fails."""
    data = copy.deepcopy(data)
    report = load_spec(data).report
    own = {key: value for key, value in (data.get("constraints") or {}).items()   # `eq` pins a reproduction's
           if not (isinstance(value, dict) and "eq" in value)}                     # count: not a design limit
    extra: dict[str, Any] = {}
    if kind == "rf_short":
        rf = max(report.rf)
        extra["rf"] = {"gt": rf + max(6, rf // 8)}
    elif kind == "params_over":
        extra["params"] = {"lt": int(report.params * 0.9)}
    elif kind == "macs_over":
        extra["macs"] = {"lt": int(report.macs * 0.9)}
    elif kind == "no_dilated_conv":
        _undilate(data)
        extra["require"] = sorted(set(own.get("require", [])) | {"dilated_conv"})
    elif kind == "no_depthwise_conv":
        _no_depthwise(data)
        extra["require"] = sorted(set(own.get("require", [])) | {"depthwise_conv"})
    elif kind == "maxpool_present":
        _add_maxpool(data)
        extra["forbid"] = sorted(set(own.get("forbid", [])) | {"maxpool"})
    else:
        raise ValueError(kind)
    constraints = {**own, **extra}
    target = {"rf_short": "RF > ", "params_over": "params < ", "macs_over": "MACs < "}.get(kind, "")
    report = load_spec({**data, "constraints": constraints}).report
    merged, _ = merge_constraints([("case", constraints)])
    failing = [r for r in evaluate_rules(report, merged) if not r.ok]
    wanted = {"no_dilated_conv": "require dilated_conv", "no_depthwise_conv": "require depthwise_conv",
              "maxpool_present": "forbid maxpool"}.get(kind)
    rule = next(r.name for r in failing if (wanted and r.name == wanted) or (target and r.name.startswith(target)))
    for other in failing:   # keep only the rule this case is about
        if other.name != rule and other.kind in ("rf", "params", "macs"):
            constraints.pop(other.kind, None)
    data["constraints"] = constraints
    return data, rule


def cases() -> list[tuple[str, str]]:
    return [(path.stem, kind) for path in BUNDLED for kind in KINDS]


def load_case(name: str, kind: str) -> tuple[dict[str, Any], str]:
    path = next(p for p in BUNDLED if p.stem == name)
    return made_to_fail(yaml.safe_load(path.read_text(encoding="utf-8")), kind)


def designer_width(value: int, old: int, in_channels: int) -> bool:
    """A width a designer would write in place of ``old``: a multiple of 8 (or 1, 2, 4); when narrower, at least
    half of ``old``, and at least the input channels when ``old`` expands them."""
    if value % 8 and value not in (1, 2, 4):
        return False
    return value > old or (value >= math.ceil(old / 2) and (old <= in_channels or value >= in_channels))


def on_raw_input(report: Report, name: str) -> bool:
    """Whether some row of the conv ``name`` (one per use of a block) has no conv upstream of it."""
    rows = {row.name: row for row in report.rows}
    instances = [r for r in report.rows if r.op == "conv" and (r.name == name or r.name.endswith("." + name))]

    def upstream_conv(row_name: str, seen: set[str]) -> bool:
        for parent in rows[row_name].inputs if row_name in rows else ():
            if parent in seen:
                continue
            seen.add(parent)
            if parent in rows and (rows[parent].op == "conv" or upstream_conv(parent, seen)):
                return True
        return False

    return not instances or any(not upstream_conv(r.name, set()) for r in instances)


def misfits(report: Report) -> set[str]:
    """The convs whose dilated kernel spans more pixels than their input map has, on either axis."""
    return {r.name for r in report.rows if r.op == "conv" and r.in_shape is not None and len(r.in_shape) == 3
            and r.kernel and r.dilation
            and any((k - 1) * d + 1 > n for k, d, n in zip(r.kernel, r.dilation, r.in_shape[1:]))}


def starves(edit: Edit) -> bool:
    """A width edit that leaves a layer with less than three quarters of its width."""
    return edit.kind is EditKind.WIDTH and any(
        isinstance(c.old, int) and isinstance(c.value, int) and 4 * c.value < 3 * c.old for c in edit.changes)


def all_single_edits(data: dict[str, Any]) -> list[Edit]:
    """Every edit of every kind at every place, over ranges that include the search's own."""
    spec = load_spec(data)
    names, keys = node_keys(spec.nodes)
    sites = find_sites(data, names)
    in_channels: dict[Any, int] = {}   # a layer's input channels: its first row's
    for row in spec.report.rows:
        key = row_site(row.name, keys)
        if key is not None and row.in_shape is not None:
            in_channels.setdefault(key, row.in_shape[0])
    edits: list[Edit | None] = []
    for site in sites.sites:
        if site.op == "conv":
            d, k, p = scalar(site.value("dilation")), scalar(site.value("k")), scalar(site.value("padding"))
            for v in range(1, 17):
                edits += [kinds.dilation(site, v, True), kinds.dilation(site, v, False)]
            edits += [kinds.kernel(site, v) for v in range(1, 12)]
            top = max(16, (p or 0) + (d or 1) * ((k or 1) - 1))
            edits += [kinds.padding(site, v) for v in range(0, top + 1)]
            edits += [kinds.stride(site, v) for v in range(1, 4)]
            edits += [kinds.separable(site, on) for on in (True, False)]
            edits += [kinds.depthwise(site, on) for on in (True, False)]
        if site.op in ("conv", "linear"):
            out = scalar(site.value("out"))
            if out is not None:
                edits += [kinds.width(site, v) for v in range(1, 4 * out + 9)
                          if designer_width(v, out, in_channels.get(site.key, 0))]
        if site.op in ("maxpool", "avgpool"):
            edits += [kinds.replace_op(site, "avgpool" if site.op == "maxpool" else "maxpool"),
                      kinds.pool_to_conv(site), kinds.pool_to_conv(site, 3, 2, 1)]
        if site.op == "flatten":
            edits.append(kinds.replace_op(site, "gap"))
        if site.use:
            for param in sites.block_params(site.use):
                current = scalar(site.layer.get(param.name, param.default)) or 1
                edits += [kinds.use_param(site, param, v) for v in range(0 if param.field == "padding" else 1,
                                                                         4 * current + 17)
                          if param.field != "out" or designer_width(v, current, in_channels.get(site.key, 0))]
        if site.op not in ("parallel", "residual"):
            edits.append(kinds.remove(site))
    for sequence in sites.sequences:
        items: Any = data
        for part in sequence:
            items = items[part]
        for index in range(len(items) + 1):
            for depthwise in (True, False):
                for d in range(1, 17):
                    layer = {"op": "conv", "name": "oracle_new", "k": 3, "padding": d, "dilation": d}
                    if depthwise:
                        layer["groups"] = "depthwise"
                    edits.append(kinds.insert(sequence, index, layer))
    return [e for e in edits if e is not None]
