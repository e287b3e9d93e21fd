"""``rfcalc inspect ... --to-spec spec.yaml``: an inspected module written back as the equivalent v1 spec.

Torch-free: works on an :class:`rfcalc.inspection.api.Inspection` (its report plus which spec layer each row came
from). The traced graph must be series-parallel (every merge joins paths that fork at one node and meet
nowhere else): each ``concat`` becomes a ``parallel``, each ``add`` a ``residual`` (the longer path is the
body; an empty path is the identity shortcut). A conv's own norm, activation and dropout, and a merge's
activation, fold into the layer when nothing else reads the intermediate result.

The spec is only written when it means exactly the same network: it is analyzed and its rows (shapes,
kernels, strides, paddings, dilations, groups, RF, jump, start, parameters, MACs) must equal the module's
report; otherwise, or when a row has no spec op, :class:`~rfcalc.errors.RfcalcError` says which rows.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from rfcalc.errors import ExitCode, RfcalcError, SpecError
from rfcalc.inspection.result import MERGE, SKIP, Inspection
from rfcalc.ops.base import At, stage_number
from rfcalc.ops.registry import REGISTRY
from rfcalc.table.geometry import Flow
from rfcalc.table.report import Report, Row


def spec_from_inspection(inspection: Inspection, *, note: str | None = None) -> dict[str, Any]:
    """The v1 spec (as a dict) of an inspected module; raises :class:`RfcalcError` when there is none."""
    if not inspection.complete:
        raise RfcalcError("cannot write a spec: the table stops at a node rfcalc cannot follow")
    report, spec_layers, spec_notes = _gathered(inspection.report, inspection.spec_layers, inspection.spec_notes)
    refused = [f"'{r.name}' ({spec_notes.get(r.name) or f'{r.op} has no spec op'})"
               for r in report.rows
               if r.name in spec_notes or spec_layers.get(r.name) is None]
    if refused:
        more = f" and {len(refused) - 3} more" if len(refused) > 3 else ""
        raise RfcalcError(f"cannot write a spec: {', '.join(refused[:3])}{more}")
    layers = _Writer(report, spec_layers).layers()
    c, h, w = report.input_shape
    spec: dict[str, Any] = {"version": 1, "name": report.name,
                            "input": {"channels": c, "size": h if h == w else [h, w]}, "layers": layers}
    _verify(spec, report, {n for n, v in spec_layers.items() if v == SKIP})
    return spec


def _gathered(report: Report, spec_layers: dict[str, Any], spec_notes: dict[str, str]
              ) -> tuple[Report, dict[str, Any], dict[str, str]]:
    """The report with every group of rows that one spec layer computes (an op's ``gather`` rule: a
    squeeze-and-excitation gate) made one row of that op. The row keeps the module's numbers (its parameters and
    MACs are the group's), so :func:`_verify` still compares the written spec with the module itself."""
    rules = [op for op in REGISTRY.values() if op.gather is not None]
    rows = {r.name: r for r in report.rows}
    consumers: dict[str, list[str]] = {}
    for r in report.rows:
        for i in r.inputs:
            consumers.setdefault(i, []).append(r.name)
    replaced: dict[str, Row] = {}
    groups: dict[str, tuple[str, ...]] = {}  # the last row of a group -> the other rows
    inner: set[str] = set()
    spec_layers, spec_notes = dict(spec_layers), dict(spec_notes)
    for row in report.rows:
        for op in rules:
            assert op.gather is not None
            found = op.gather(row, rows, consumers)
            if found is None or inner & {found.last, *found.inner}:
                continue
            source, group = rows[found.source], [rows[n] for n in found.inner]
            computed = op.calc(found.layer, At(row.name, row.path), Flow(source.out_shape, source.geo_out, source.name))
            replaced[row.name] = replace(row, op=op.name, inputs=(source.name,), in_shape=source.out_shape,
                                         params=row.params + sum(r.params for r in group),
                                         macs=row.macs + sum(r.macs for r in group), attrs=computed[0].attrs,
                                         in_shapes=None, attached_to=None)
            inner.update(found.inner)
            groups[row.name] = found.inner
            spec_layers[row.name] = found.layer
            for name in (row.name, *found.inner):
                spec_notes.pop(name, None)
            break
    if not replaced:
        return report, spec_layers, spec_notes
    kept = [replaced.get(r.name, r) for r in report.rows if r.name not in inner]
    renamed: dict[str, str] = {}
    for last, members in groups.items():
        new = _group_name(members, set(rows) | set(renamed.values()))
        if new is not None:
            renamed[last] = new
    for old, new in renamed.items():
        spec_layers[new] = spec_layers.pop(old)
    kept = [replace(r, name=renamed.get(r.name, r.name), inputs=tuple(renamed.get(i, i) for i in r.inputs))
            for r in kept]
    return replace(report, rows=tuple(kept)), spec_layers, spec_notes


def _group_name(inner: tuple[str, ...], taken: set[str]) -> str | None:
    """The module the rows of a group share (``se.fc1``, ``se.fc2``, ... -> ``se``; rows of no module, such as a
    ``mean`` in the forward, do not count), when it is a free name."""
    parts = [n.split(".")[:-1] for n in inner if "." in n]
    if len(parts) < 2:
        return None
    prefix: list[str] = []
    for pieces in zip(*parts):
        if len(set(pieces)) != 1:
            break
        prefix.append(pieces[0])
    name = ".".join(prefix)
    return name if name and name not in taken else None


def dropped_settings(inspection: Inspection) -> list[str]:
    """One line per module setting the written spec does not hold (it leaves the RF as it is, so the spec still
    has the module's table): where (the module path, the row's name), its op, the setting and its value."""
    ops = {r.name: r.op for r in inspection.report.rows}
    return [f"module '{name}' ({ops.get(name, 'layer')}): {setting} is not in the spec (its "
            f"{ops.get(name, 'layer')} has the default; the RF is the same)"
            for name, settings in inspection.spec_dropped.items() for setting in settings]


def spec_yaml(inspection: Inspection, *, source: str | None = None) -> str:
    """The spec as YAML text, with a header comment naming where it came from and each setting it drops."""
    spec = spec_from_inspection(inspection)
    head = f"# generated by rfcalc inspect --to-spec{f' from {source}' if source else ''}\n"
    head += "".join(f"# dropped: {line}\n" for line in dropped_settings(inspection))
    return head + yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=120)


def write_spec(inspection: Inspection, path: Path, *, source: str | None = None) -> None:
    text = spec_yaml(inspection, source=source)
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RfcalcError(f"{path}: cannot write: {exc.strerror or exc}", ExitCode.SYSTEM) from None


class _Writer:
    def __init__(self, report: Report, spec_layers: dict[str, Any]) -> None:
        self.spec_layers = spec_layers
        self.rows: dict[str, Row] = {}
        skipped: dict[str, str] = {}
        for row in report.rows:
            if spec_layers.get(row.name) == SKIP:
                skipped[row.name] = self._resolve(row.inputs[0], skipped)
                continue
            self.rows[row.name] = row
        self.inputs = {name: [self._resolve(i, skipped) for i in row.inputs] for name, row in self.rows.items()}
        self.consumers: dict[str, list[str]] = {}
        for name, inputs in self.inputs.items():
            for i in inputs:
                self.consumers.setdefault(i, []).append(name)
        self.order = {"input": -1, **{name: k for k, name in enumerate(self.rows)}}
        self.idom = self._dominators()
        self.last = list(self.rows)[-1]
        self.emitted: Counter[str] = Counter()
        self.names: set[str] = set()

    @staticmethod
    def _resolve(name: str, skipped: dict[str, str]) -> str:
        return skipped.get(name, name)

    def _dominators(self) -> dict[str, str]:
        idom = {"input": "input"}
        for name in self.rows:
            preds = self.inputs[name]
            new = preds[0]
            for p in preds[1:]:
                new = self._intersect(p, new, idom)
            idom[name] = new
        return idom

    def _intersect(self, a: str, b: str, idom: dict[str, str]) -> str:
        while a != b:
            while self.order[a] > self.order[b]:
                a = idom[a]
            while self.order[b] > self.order[a]:
                b = idom[b]
        return a

    def layers(self) -> list[dict[str, Any]]:
        out = self._sequence("input", self.last)
        extra = [n for n in self.rows if self.emitted[n] != 1]
        if extra:
            raise RfcalcError(f"cannot write a spec: the graph is not a nesting of parallel and residual blocks "
                              f"(at '{extra[0]}')")
        return out

    def _sequence(self, start: str, end: str) -> list[dict[str, Any]]:
        items: list[tuple[Row, dict[str, Any]]] = []
        cur = end
        while cur != start:
            if cur == "input":
                raise RfcalcError(f"cannot write a spec: the graph is not a nesting of parallel and residual "
                                  f"blocks (near '{end}')")
            row = self.rows[cur]
            self.emitted[cur] += 1
            if self.spec_layers.get(cur) == MERGE:
                fork = self.idom[cur]
                paths = [self._sequence(fork, i) for i in self.inputs[cur]]
                items.append((row, self._merge(row, paths)))
                cur = fork
            else:
                items.append((row, self._layer(row)))
                cur = self.inputs[cur][0]
        items.reverse()
        return self._fold(items)

    def _fold(self, items: list[tuple[Row, dict[str, Any]]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        held: tuple[Row, dict[str, Any], int] | None = None  # (last row folded into, layer, stage)
        for row, layer in items:
            if held is not None and self.consumers.get(held[0].name) == [row.name]:
                last, target, stage = held
                step = _stage(row, self.spec_layers.get(row.name))
                allowed = (1, 2, 3) if target["op"] == "conv" else (2,)  # a merge takes an activation only
                if step is not None and step[0] > stage and step[0] in allowed:
                    target.update(step[1])
                    held = (row, target, step[0])
                    continue
            out.append(layer)
            held = (row, layer, 0) if layer["op"] in ("conv", "parallel", "residual") else None
        return out

    def _name(self, row: Row) -> str:
        base = re.sub(r"\W", "_", row.name)
        if not re.match(r"^[A-Za-z_]", base):
            base = f"l{base}"
        name, k = base, 1
        while name in self.names:
            name = f"{base}_{k}"
            k += 1
        self.names.add(name)
        return name

    def _layer(self, row: Row) -> dict[str, Any]:
        """A row as a spec layer, written by its op's registered rule."""
        out: dict[str, Any] = {"op": row.op, "name": self._name(row)}
        out.update(REGISTRY[row.op].to_spec(row, self.spec_layers[row.name]))
        return out

    def _merge(self, row: Row, paths: list[list[dict[str, Any]]]) -> dict[str, Any]:
        name = self._name(row)
        if row.op == "concat" or len(paths) != 2 or not any(paths):
            return {"op": "parallel", "name": name, "merge": row.op, "paths": paths}
        body, shortcut = sorted(paths, key=len, reverse=True)
        out: dict[str, Any] = {"op": "residual", "name": name, "body": body}
        if shortcut:
            out["shortcut"] = shortcut
        return out


def _stage(row: Row, layer: Any) -> tuple[int, dict[str, Any]] | None:
    """What a standalone row adds to a conv it folds into: (order after the conv, fields); None when it cannot
    fold. Which ops fold, and how, is the registry's (an op's ``attach`` stage and ``fold`` rule)."""
    op = REGISTRY.get(row.op)
    if op is None or op.attach is None or op.fold is None:
        return None
    fields = op.fold(row, layer)
    return None if fields is None else (stage_number(op.attach), fields)


def _compact(pair: Any) -> Any:
    a, b = (int(v) for v in pair)
    return a if a == b else [a, b]


_SIGNATURE_FIELDS = ("op", "in_shape", "out_shape", "kernel", "stride", "padding", "dilation", "groups", "jump_in",
                     "jump_out", "rf_in", "rf_out", "start_in", "start_out", "global", "params", "macs")


def signature(row: dict[str, Any]) -> tuple[Any, ...]:
    """A row's numbers, without names: what two tables of the same network share."""
    return tuple(tuple(v) if isinstance(v, list) else v for v in (row[f] for f in _SIGNATURE_FIELDS))


def _verify(spec: dict[str, Any], report: Report, skipped: set[str]) -> None:
    from rfcalc.analysis.load import analyze

    try:
        written = analyze(spec).to_dict()
    except SpecError as exc:
        raise RfcalcError(f"cannot write a spec: the generated spec is invalid: {exc.problems[0]}") from None
    mine = report.to_dict()
    ours = Counter(signature(r) for r in mine["layers"] if r["name"] not in skipped)
    theirs = Counter(signature(r) for r in written["layers"])
    if ours != theirs or mine["totals"] != written["totals"]:
        missing = [r["name"] for r in mine["layers"] if r["name"] not in skipped and signature(r) not in theirs]
        where = f" (first at '{missing[0]}')" if missing else ""
        raise RfcalcError(f"cannot write a spec: the spec rfcalc can write would not have the same table{where}")
