"""Raw layer dicts -> the expanded, validated graph (:mod:`rfcalc.spec.graph`).

Expands `use: BLOCK` (with `$param` text substitution, never evaluated), merges `defaults`
under each layer of that op, validates each layer with its pydantic model, expands `repeat`
and `separable`, and gives every node its full dotted name. Every mistake becomes a located
:class:`~rfcalc.errors.Problem`; expansion goes on past a bad layer so that one run reports all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from rfcalc.errors import Problem
from rfcalc.ops.conv import ConvLayer, separable_parts
from rfcalc.spec.graph import Group, Node, Parallel, Prim, Residual
from rfcalc.spec.messages import name_problem, show, suggest, translate
from rfcalc.spec.models import LAYER_MODELS, NAME_PATTERN, OPS, RESERVED_NAMES, BlockDef, ParallelLayer, ResidualLayer
from rfcalc.spec.source import Key, Source, dotted

_WHOLE_REF = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_LAYER_KEYS = ("name", "repeat")


@dataclass
class RawLayer:
    """A layer as written (after substitution), where it came from, and where each field came from."""

    data: Any
    key: Key
    path: str
    origins: dict[str, Key] = field(default_factory=dict)


@dataclass
class Expander:
    source: Source
    defaults: dict[str, dict[str, Any]]
    blocks: dict[str, BlockDef]
    problems: list[Problem] = field(default_factory=list)

    def fail(self, key: Key, path: str, message: str, *, at_key: bool = False) -> None:
        problem = self.source.problem(key, path, message, at_key=at_key)
        if problem not in self.problems:  # a mistake inside a block is said once, however often the block is used
            self.problems.append(problem)

    # -- sequences -------------------------------------------------------------------------------------------
    def sequence(self, items: list[RawLayer], prefix: str, *, in_block: bool = False,
                 stack: tuple[str, ...] = ()) -> tuple[Node, ...]:
        nodes: list[Node] = []
        used: dict[str, str] = {}
        for index, raw in enumerate(items):
            if not isinstance(raw.data, dict):
                self.fail(raw.key, raw.path, f"must be a mapping like {{op: conv, out: 16}} or {{use: BLOCK}}, "
                                             f"got {show(raw.data)}")
                continue
            local = self._local_name(raw, index, in_block, used)
            if local is None:
                continue
            used[local] = raw.path
            node = self.layer(raw, f"{prefix}.{local}" if prefix else local, stack)
            if node is not None:
                nodes.append(node)
        return tuple(nodes)

    def _local_name(self, raw: RawLayer, index: int, in_block: bool, used: dict[str, str]) -> str | None:
        given = raw.data.get("name")
        if given is not None:
            if not isinstance(given, str) or not re.match(NAME_PATTERN, given):
                self.fail(raw.origins.get("name", raw.key + ("name",)), f"{raw.path}.name", name_problem(given))
                return None
            if given in RESERVED_NAMES or given.startswith("_"):
                self.fail(raw.origins.get("name", raw.key + ("name",)), f"{raw.path}.name",
                          f"name '{given}' is taken by PyTorch's nn.Module (it would hide an attribute of the built "
                          f"model) or starts with '_'; choose another name")
                return None
            if given in used:
                self.fail(raw.origins.get("name", raw.key + ("name",)), f"{raw.path}.name",
                          f"duplicate name '{given}', already used by {used[given]}; names must be unique")
                return None
            return given
        if in_block:
            base = str(index)
        else:
            stem = raw.data.get("op") or raw.data.get("use") or "layer"
            base = f"{stem}{index + 1}" if isinstance(stem, str) and stem.isidentifier() else f"layer{index + 1}"
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        return name

    # -- one layer -------------------------------------------------------------------------------------------
    def layer(self, raw: RawLayer, name: str, stack: tuple[str, ...]) -> Node | None:
        repeat = raw.data.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            self.fail(raw.origins.get("repeat", raw.key + ("repeat",)), f"{raw.path}.repeat",
                      f"must be an integer >= 1, got {show(repeat)}")
            return None
        if repeat == 1:
            return self.single(raw, name, stack)
        copies = [self.single(raw, f"{name}.{i}", stack) for i in range(repeat)]
        if any(c is None for c in copies):
            return None
        return Group(name, raw.path, raw.key, "repeat", tuple(c for c in copies if c is not None))

    def single(self, raw: RawLayer, name: str, stack: tuple[str, ...]) -> Node | None:
        if "use" in raw.data:
            return self.use(raw, name, stack)
        op = raw.data.get("op")
        if op is None:
            self.fail(raw.key, raw.path, f"missing `op` (one of {', '.join(OPS)}) or `use: BLOCK`")
            return None
        if not isinstance(op, str) or op not in LAYER_MODELS:
            hint = suggest(op, OPS)
            if not hint and isinstance(op, str) and op in self.blocks:
                hint = f" ('{op}' is a block: write `use: {op}`)"
            self.fail(raw.origins.get("op", raw.key + ("op",)), f"{raw.path}.op",
                      f"unknown op {show(op)}{hint}; allowed: {', '.join(OPS)}")
            return None
        merged = {**self.defaults.get(op, {}), **raw.data}
        # a field the layer writes itself is located at the layer, even when `defaults` has it too
        origins = {f: ("defaults", op, f) for f in self.defaults.get(op, {}) if f not in raw.data} | raw.origins
        model = LAYER_MODELS[op]
        try:
            layer = model.model_validate(merged)
        except ValidationError as exc:
            self.problems.extend(translate(exc, self.source, raw.key, raw.path, model, origins))
            return None
        if isinstance(layer, ParallelLayer):
            paths = tuple(self.sequence(self._children(p, raw, ("paths", j), f"paths[{j}]"),
                                        f"{name}.{j}", stack=stack) for j, p in enumerate(layer.paths))
            return Parallel(name, raw.path, raw.key, paths, layer.merge, layer.act)
        if isinstance(layer, ResidualLayer):
            body = self.sequence(self._children(layer.body, raw, ("body",), "body"), f"{name}.body", stack=stack)
            shortcut = None
            if layer.shortcut is not None:
                shortcut = self.sequence(self._children(layer.shortcut, raw, ("shortcut",), "shortcut"),
                                         f"{name}.shortcut", stack=stack)
            return Residual(name, raw.path, raw.key, body, shortcut, layer.act)
        if isinstance(layer, ConvLayer) and layer.separable:
            return self._separable(layer, raw, name)
        return Prim(name, raw.path, raw.key, layer.model_copy(update={"name": None, "repeat": 1}))

    @staticmethod
    def _children(items: list[Any], raw: RawLayer, sub: Key, text: str) -> list[RawLayer]:
        return [RawLayer(item, raw.key + sub + (i,), f"{raw.path}.{text}[{i}]") for i, item in enumerate(items)]

    @staticmethod
    def _separable(layer: ConvLayer, raw: RawLayer, name: str) -> Group:
        depthwise, pointwise = separable_parts(layer)
        return Group(name, raw.path, raw.key, "separable", (
            Prim(f"{name}.dw", f"{raw.path} (depthwise part)", raw.key, depthwise),
            Prim(f"{name}.pw", f"{raw.path} (pointwise part)", raw.key, pointwise),
        ))

    # -- blocks ----------------------------------------------------------------------------------------------
    def use(self, raw: RawLayer, name: str, stack: tuple[str, ...]) -> Node | None:
        block_name = raw.data["use"]
        use_key = raw.origins.get("use", raw.key + ("use",))
        if "op" in raw.data:
            self.fail(raw.key, raw.path, "give either `op` or `use`, not both")
            return None
        if not isinstance(block_name, str) or block_name not in self.blocks:
            known = sorted(self.blocks)
            allowed = f"defined blocks: {', '.join(known)}" if known else "no blocks are defined under `blocks:`"
            self.fail(use_key, f"{raw.path}.use", f"unknown block {show(block_name)}"
                                                  f"{suggest(block_name, known)}; {allowed}")
            return None
        if block_name in stack:
            self.fail(use_key, f"{raw.path}.use", f"block '{block_name}' uses itself "
                                                  f"({' -> '.join(stack + (block_name,))})")
            return None
        block = self.blocks[block_name]
        args = {k: v for k, v in raw.data.items() if k not in ("use",) + _LAYER_KEYS}
        bad = False
        for arg in args:
            if arg not in block.params:
                allowed = ", ".join(block.params) or "none"
                self.fail(raw.key + (arg,), f"{raw.path}.{arg}", f"unknown parameter '{arg}' for block "
                          f"'{block_name}'{suggest(arg, list(block.params))}; its params: {allowed}", at_key=True)
                bad = True
        values: dict[str, tuple[Any, Key]] = {}
        for param, default in block.params.items():
            if param in args:
                values[param] = (args[param], raw.origins.get(param, raw.key + (param,)))
            elif default is None:
                self.fail(raw.key, raw.path, f"missing parameter '{param}' for block '{block_name}' "
                                             f"(it has no default)")
                bad = True
            else:
                values[param] = (default, ("blocks", block_name, "params", param))
        if bad:
            return None
        children: list[RawLayer] = []
        for i, item in enumerate(block.layers):
            key = ("blocks", block_name, "layers", i)
            path = f"{raw.path} > blocks.{block_name}.layers[{i}]"
            data, origins, unknown = self._substitute(item, values, key, path, block_name)
            if not unknown:  # else a value is the unknown '$name', said once (not again as a bad value)
                children.append(RawLayer(data, key, path, origins))
        nodes = self.sequence(children, name, in_block=True, stack=stack + (block_name,))
        return Group(name, raw.path, raw.key, "block", nodes)

    def _substitute(self, item: Any, values: dict[str, tuple[Any, Key]], key: Key, path: str,
                    block: str) -> tuple[Any, dict[str, Key], bool]:
        """The layer with its `$params` replaced, where each replaced field came from, and whether a `$name`
        is no parameter of the block."""
        origins: dict[str, Key] = {}
        unknown = False

        def sub(value: Any, where: Key) -> Any:
            nonlocal unknown
            if isinstance(value, dict):
                return {k: sub(v, where + (k,)) for k, v in value.items()}
            if isinstance(value, list):
                return [sub(v, where + (i,)) for i, v in enumerate(value)]
            if not isinstance(value, str) or "$" not in value:
                return value
            for ref in _REF.findall(value):
                if ref not in values:  # a mistake in the block itself: its path there, not the use's
                    unknown = True
                    self.fail(where, dotted(where), f"unknown parameter '${ref}' in block '{block}'"
                                           f"{suggest(ref, list(values))}; its params: {', '.join(values) or 'none'}")
            whole = _WHOLE_REF.match(value)
            if whole and whole.group(1) in values:
                param_value, param_key = values[whole.group(1)]
                if len(where) == len(key) + 1:
                    origins[where[-1]] = param_key
                return param_value
            return _REF.sub(lambda m: str(values[m.group(1)][0]) if m.group(1) in values else m.group(0), value)

        data = sub(item, key)
        return data, origins, unknown
