"""The floors of src/ never point up: every import, read with the standard library's ``ast``, goes to
the same floor or a lower one, and the pure-PyTorch floors (src.accum, src.quant) import neither Hydra
nor OmegaConf. A failure names file:line and the import.

  0 src.core   1 src.accum   2 src.quant   3 src.data, src.models   4 src.engine   5 src.sweeps
  6 src.reporting (read-only: renders tables from records, never imports the engine that trains)
  7 src.train (the entry point; scripts/ and hydra_plugins/ lie outside src/ and may import anything)
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

SRC = ROOT / "src"
FLOORS = {"src.core": 0, "src.accum": 1, "src.quant": 2, "src.data": 3, "src.models": 3, "src.engine": 4,
          "src.sweeps": 5, "src.reporting": 6, "src.train": 7}
PURE = {"src.accum", "src.quant"}  # import them alone, like larq's quantizers
NO_CONFIG_LIBRARIES = ("hydra", "omegaconf")
READ_ONLY = {"src.reporting": "src.engine"}  # reporting renders records; it never launches training


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor_of(name: str) -> str | None:
    """The floor package of a dotted module name ('src.quant.layers' -> 'src.quant'), None outside src."""
    parts = name.split(".")
    if parts[0] != "src" or len(parts) < 2:
        return None
    return ".".join(parts[:2])


def imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, function-level ones included and
    relative ones resolved; ``from package import name`` counts as an import of ``package.name`` too
    (it may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path, root).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
    return sorted(found)


def violations(root: Path = ROOT) -> list[tuple[str, int, str, str]]:
    """(file, line, what is imported: floor or library, why) for every import that breaks the rules."""
    out: dict[tuple[str, int, str], str] = {}
    for path in sorted((root / "src").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        floor = floor_of(module_name(path, root))
        if floor is None:  # src/__init__.py
            continue
        assert floor in FLOORS, f"{rel}: package {floor} has no floor; add it to FLOORS (and to the docstring)"
        for line, name in imports(path, root):
            target, library = floor_of(name), name.split(".")[0]
            if target in FLOORS and FLOORS[target] > FLOORS[floor]:
                out.setdefault((rel, line, target), f"{floor} (floor {FLOORS[floor]}) imports {name} "
                                                    f"(floor {FLOORS[target]})")
            elif target is not None and READ_ONLY.get(floor) == target:
                out.setdefault((rel, line, target), f"{floor} is read-only but imports {name}")
            if floor in PURE and library in NO_CONFIG_LIBRARIES:
                out.setdefault((rel, line, library), f"{floor} must stay pure PyTorch but imports {name}")
    return [(*key, why) for key, why in sorted(out.items())]


def test_no_import_points_up():
    found = violations()
    assert not found, "imports against the floor order:\n" + "\n".join(
        f"  {file}:{line}: {why}" for file, line, _, why in found)


def test_the_checker_reads_relative_from_and_function_level_imports(tmp_path):
    """The reader itself, on a throw-away tree: a relative import resolves against its package,
    ``from src import x`` counts as an import of src.x, a function-level import is found too, and
    importing a lower floor or the same floor is fine."""
    probe = tmp_path / "src" / "quant" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from ..engine import runner\nfrom src import models\nfrom . import layers\n"
                     "from src.accum import wrap\n\n\ndef f():\n    import omegaconf.dictconfig\n")
    assert imports(probe, tmp_path) == [(1, "src.engine"), (1, "src.engine.runner"), (2, "src"), (2, "src.models"),
                                        (3, "src.quant"), (3, "src.quant.layers"), (4, "src.accum"),
                                        (4, "src.accum.wrap"), (8, "omegaconf.dictconfig")]
    assert [(file, line, what) for file, line, what, _ in violations(tmp_path)] == [
        ("src/quant/probe.py", 1, "src.engine"), ("src/quant/probe.py", 2, "src.models"),
        ("src/quant/probe.py", 8, "omegaconf")]
