"""The architecture of src/clvkit, read from its import statements (ast, lazy imports too).

Fails on: an import cycle; a private name (leading underscore) imported or used across
modules; a private module directly under src/clvkit; an import that points up the layers; an
import of a model folder (``clvkit.models.<folder>``) from ``inference`` or from the layers above
``models/``, or from the models' shared modules or another model's folder; a layer above
``models/`` importing other parts of ``clvkit.models`` than its contract, registry and
persistence; and model names or BG/NBD / Gamma-Gamma function names in those layers or in
``inference`` (a model-name branch). Each message names the module, the line and what to do.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "clvkit"
TOP = "clvkit"

#: Layer ranks: a module may import from its own rank or below, never above.
RANKS: dict[str, int] = {
    "errors": 0,
    "units": 0,
    "rng": 0,
    "utils": 0,
    "data": 1,
    "models": 2,
    "inference": 2,
    "datasets": 3,
    "value": 3,
    "evaluation": 4,
    "distributed": 4,
    "firm": 4,
    "plots": 5,
    "report": 6,
    "report_covariates": 6,
    "report_firm": 6,
    "cli": 7,
    "__main__": 7,
}
#: Layers above models/: they talk to models only through these modules (and the public names
#: of the package clvkit.models, e.g. BetaGeo as a user-facing default).
UPPER = ("value", "evaluation", "distributed", "firm", "plots", "report", "report_covariates",
         "report_firm", "cli", "__main__")  # fmt: skip
MODEL_API = {"clvkit.models", "clvkit.models.contract", "clvkit.models.registry",
             "clvkit.models.persistence"}  # fmt: skip
#: Model-specific names that must not appear above models/ (model-name branches).
MODEL_NAMES = ("BetaGeo", "GammaGamma")
MODEL_PREFIXES = ("bg_", "gg_", "_bg_", "_gg_", "nb_bg", "_nb_bg", "_nb_gg", "nb_gg")


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` (a module of clvkit) at ``line``; ``name`` is the imported
    name when it is not itself a module."""

    source: str
    target: str
    line: int
    name: str | None


def _modules() -> dict[str, Path]:
    mods = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        mods[name] = path
    return mods


MODULES = _modules()
TREES = {m: ast.parse(p.read_text(encoding="utf-8"), filename=str(p)) for m, p in MODULES.items()}
MODEL_FOLDERS = sorted(
    f"{TOP}.models.{p.name}"
    for p in (SRC / "models").iterdir()
    if p.is_dir() and (p / "__init__.py").exists()
)


def _owner(name: str) -> str:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _rel(m: str) -> str:
    return str(MODULES[m].relative_to(SRC.parents[1]))


def _edges() -> list[Edge]:
    out = []
    for m, tree in TREES.items():
        is_pkg = MODULES[m].name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                pairs = [(a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = m.split(".") if is_pkg else m.split(".")[:-1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                pairs = [
                    (f"{base}.{a.name}", None) if f"{base}.{a.name}" in MODULES else (base, a.name)
                    for a in node.names
                ]
            else:
                continue
            for target, name in pairs:
                if target == TOP or target.startswith(TOP + "."):
                    t = _owner(target)
                    if t and t != m:
                        out.append(Edge(m, t, node.lineno, name))
    return out


EDGES = _edges()


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the package root (lazy re-exports)


def _report(problems: list[str], what: str) -> None:
    if problems:
        pytest.fail(f"{len(problems)} {what}:\n" + "\n".join(sorted(set(problems))), False)


def test_no_import_cycles():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    where: dict[tuple[str, str], int] = {}
    for e in EDGES:
        graph[e.source].add(e.target)
        where.setdefault((e.source, e.target), e.line)
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            # a package importing its own submodules (and back) is not a cycle of layers
            comp = [c for c in comp if not any(o != c and o.startswith(c + ".") for o in comp)]
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    problems = []
    for comp in cycles:
        links = [
            f"{_rel(a)}:{where[(a, b)]} imports {b}" for a in comp for b in comp if (a, b) in where
        ]
        problems.append(
            "cycle " + " <-> ".join(comp) + " (" + "; ".join(links) + "). Suggestion: move the "
            "shared code into the lower module, or pass it in as an argument."
        )
    _report(problems, "import cycles")


def test_no_private_names_across_modules():
    problems = []
    for e in EDGES:
        if e.name and e.name.startswith("_") and not e.name.startswith("__"):
            problems.append(
                f"{_rel(e.source)}:{e.line} imports the private name {e.target}.{e.name}. "
                f"Suggestion: make it public in {e.target} (no underscore, in __all__, with a "
                "docstring) or keep the code where it is used."
            )
    for m, tree in TREES.items():
        alias: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                for a in node.names:
                    if f"{node.module}.{a.name}" in MODULES:
                        alias[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname and a.name in MODULES:
                        alias[a.asname] = a.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in alias
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and alias[node.value.id] != m
                and f"{alias[node.value.id]}.{node.attr}" not in MODULES
            ):
                problems.append(
                    f"{_rel(m)}:{node.lineno} uses the private name "
                    f"{alias[node.value.id]}.{node.attr}. Suggestion: make it public there or "
                    "move the code."
                )
    _report(problems, "private names used across modules")


def test_no_private_modules_at_the_top():
    bad = sorted(
        p.name
        for p in SRC.iterdir()
        if p.name.startswith("_")
        and not p.name.startswith("__")
        and (p.suffix == ".py" or (p / "__init__.py").exists())
    )
    _report(
        [
            f"src/clvkit/{b} is a private module at the top level. Suggestion: move it into "
            "the sub-package of its layer (utils/, data/, models/, inference/, value/, "
            "evaluation/) under a public name."
            for b in bad
        ],
        "private top-level modules",
    )


def test_every_module_has_a_layer():
    problems = [
        f"{_rel(m)}: top-level module or package {_layer(m)!r} has no layer. Suggestion: put "
        "it in a layer's sub-package, or add it to RANKS in tests/test_architecture.py (and to "
        "docs/architecture.md)."
        for m in MODULES
        if _layer(m) is not None and _layer(m) not in RANKS
    ]
    _report(problems, "modules without a layer")


def test_imports_point_down():
    problems = []
    for e in EDGES:
        src, dst = _layer(e.source), _layer(e.target)
        if src is None or dst is None or src not in RANKS or dst not in RANKS:
            continue
        if RANKS[dst] > RANKS[src]:
            problems.append(
                f"{_rel(e.source)}:{e.line} ({src}, layer {RANKS[src]}) imports {e.target} "
                f"({dst}, layer {RANKS[dst]}): an import that points up. Suggestion: move the "
                f"code it needs down into {src} or below, or have {dst} call {src} instead."
            )
    _report(problems, "imports pointing up the layers")


def _folder(target: str) -> str | None:
    for f in MODEL_FOLDERS:
        if target == f or target.startswith(f + "."):
            return f
    return None


def test_model_folders_imported_only_by_models():
    problems = []
    for e in EDGES:
        folder = _folder(e.target)
        if folder is None:
            continue
        layer = _layer(e.source)
        own = _folder(e.source)
        if layer in UPPER or layer == "inference":
            problems.append(
                f"{_rel(e.source)}:{e.line} imports {e.target}: {layer} must not know a "
                "particular model. Suggestion: use the contract (clvkit.models.contract: the "
                "spec's primitives) through clvkit.models.registry.resolve / get, or make it "
                "an optional capability of the spec."
            )
        elif layer == "models" and own != folder and e.source != "clvkit.models":
            where = f"model folder {own}" if own else "the models' shared module"
            problems.append(
                f"{_rel(e.source)}:{e.line} imports {e.target} from {where} {e.source}. "
                "Suggestion: shared code looks models up in clvkit.models.registry; code two "
                "models share belongs in a shared module of clvkit.models."
            )
    _report(problems, "imports of model folders from outside them")


def test_upper_layers_use_only_the_model_api():
    problems = []
    for e in EDGES:
        if _layer(e.source) in UPPER and _layer(e.target) == "models":
            if e.target not in MODEL_API and _folder(e.target) is None:  # folders: test above
                problems.append(
                    f"{_rel(e.source)}:{e.line} imports {e.target}"
                    + (f".{e.name}" if e.name else "")
                    + f". Suggestion: layers above models/ use only {sorted(MODEL_API)}; "
                    "expose what is needed there (or move the helper to utils/ or data/)."
                )
    _report(problems, "imports of model internals from the layers above models/")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


ABOVE_FIX = (
    "ask the spec (spec.kind, spec.label, spec.param_names, optional capabilities) or "
    "clvkit.models.registry instead",
    "call the contract's primitive (PurchaseSpec / SpendSpec methods) on the spec from "
    "clvkit.models.registry.resolve",
)
INFERENCE_FIX = (
    "let the estimator class say it (its spec, or a hook of ModelBase) instead of a branch "
    "on the model name",
    "move the model's kernel into its folder (clvkit.models.<model>/) and reach it through "
    "an estimator hook",
)


def _model_names(layers: tuple[str, ...], fix: tuple[str, str]) -> list[str]:
    problems = []
    for m, tree in TREES.items():
        if _layer(m) not in layers:
            continue
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) in docs:
                    continue
                hit = [n for n in MODEL_NAMES if n in node.value]
                if hit:
                    problems.append(
                        f"{_rel(m)}:{node.lineno} has the string {node.value[:60]!r} naming "
                        f"{hit[0]}: a model-name branch or message. Suggestion: {fix[0]}."
                    )
            names: list[str] = []
            if isinstance(node, ast.Name):
                names = [node.id]
            elif isinstance(node, ast.Attribute):
                names = [node.attr]
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.alias):
                names = [node.asname or node.name.rpartition(".")[2]]
            for name in names:
                if name.startswith(MODEL_PREFIXES):
                    problems.append(
                        f"{_rel(m)}:{getattr(node, 'lineno', '?')} uses {name!r}, a BG/NBD or "
                        f"Gamma-Gamma function name. Suggestion: {fix[1]}."
                    )
    return problems


def test_no_model_names_above_models():
    _report(_model_names(UPPER, ABOVE_FIX), "model-specific names above models/")


def test_inference_is_model_agnostic():
    """The shared estimator machinery (inference/) branches on no model: model-specific
    kernels and likelihoods live in the model's folder and reach inference through hooks."""
    _report(_model_names(("inference",), INFERENCE_FIX), "model-specific names in inference/")


def test_the_checker_sees_the_code():
    """Guard against a vacuous pass: the graph has the modules and imports we know exist."""
    assert {"clvkit.models.contract", "clvkit.models.registry", "clvkit.errors"} <= set(MODULES)
    assert MODEL_FOLDERS and all(f.startswith("clvkit.models.") for f in MODEL_FOLDERS)
    assert any(
        e.source == "clvkit.models.registry" and e.target == "clvkit.models.contract" for e in EDGES
    )
    assert len(EDGES) > 50
