"""Imports run one way (docs/layout.md): config -> data / models / losses / weights -> engine ->
deploy / analysis / reporting / study -> api -> cli. Every import counts, those inside functions too."""

from __future__ import annotations

import ast

import pytest

from support import ROOT

PACKAGE = ROOT / "src" / "smmcl"

# Top-level module or subpackage of smmcl -> its layer; a module may import its own layer and those below.
LAYERS = {
    "errors": 0, "files": 0, "memory": 0, "outputs": 0, "progress": 0, "collectives": 0, "config": 0,
    "data": 1, "models": 1, "losses": 1, "weights": 1, "visualize": 1, "model_file": 1, "recordings": 1,
    "engine": 2,
    "deploy": 3, "analysis": 3, "reporting": 3, "study": 3, "demo": 3,
    "api": 4,
    "cli": 5, "__main__": 5,
    "__init__": 6,  # the package's lazy table of public names
}


def smmcl_imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + ([f"{node.module}.{a.name}" for a in node.names] if node.module == "smmcl" else [])
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "smmcl" and len(parts) > 1:
                yield node.lineno, parts[1]


def test_every_module_has_a_layer():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.rglob("*.py")}
    assert tops <= set(LAYERS), f"give these a layer in LAYERS: {sorted(tops - set(LAYERS))}"


def test_imports_run_one_way():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for line, target in smmcl_imports(ast.parse(path.read_text())):
            if target != own and target in LAYERS and LAYERS[target] > LAYERS[own]:
                upward.append(f"{path.relative_to(PACKAGE)}:{line} ({own}) imports smmcl.{target}")
    assert not upward, "imports running back up the layers:\n" + "\n".join(upward)


def test_the_checker_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    from smmcl.api import report\n    import smmcl.cli\n")
    assert [t for _, t in smmcl_imports(tree)] == ["api", "cli"]


# What the CLI may import: it is a thin layer over the API (README "Python API"), plus the config it parses,
# the errors it reports and the switch that quiets progress bars; and, named one by one, the few pieces only a
# command line needs, which the API does not pass through: the score table, a DDP rank's exit, a study's plan
# in words and its default folder, the claim of a single output file (`eval --out`, checked before evaluating), and the
# process-wide allocator setting a program (not a library) may choose.
CLI_MAY_IMPORT = {"api", "config", "errors", "progress"}
CLI_MAY_USE = {"smmcl.memory": {"keep_freed_memory"}, "smmcl.engine.evaluate": {"format_scores"}, "smmcl.engine.distributed": {"exit_process"},
               "smmcl.study.runner": {"default_out", "describe_plan"}, "smmcl.outputs": {"output_file"}}


def test_the_cli_goes_through_the_api():
    deeper = []
    for path in (PACKAGE / "cli").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for line, target in smmcl_imports(tree):
            if target in CLI_MAY_IMPORT | {"cli"}:
                continue
            node = next(n for n in ast.walk(tree) if getattr(n, "lineno", None) == line and isinstance(n, (ast.Import, ast.ImportFrom)))
            named = isinstance(node, ast.ImportFrom) and {a.name for a in node.names} <= CLI_MAY_USE.get(node.module, set())
            if not named:
                deeper.append(f"{path.relative_to(PACKAGE)}:{line}: smmcl.{target}")
    assert not deeper, "the CLI reaches past the API:\n" + "\n".join(sorted(deeper))


def test_the_public_names_resolve_and_dir_lists_them():
    import smmcl

    listed = dir(smmcl)
    for name in smmcl.__all__:
        assert name in listed and getattr(smmcl, name) is not None, name
    assert {"train", "evaluate", "open_model_file", "Predictor", "predict", "export"} <= set(smmcl.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        smmcl.nope


def test_the_api_calls_a_model_file_checkpoint_and_a_config_config(tmp_path):
    """One name for each thing across the public API: a model file is `checkpoint` and comes first, a config is
    `config`; the 0.2 spellings (`cfg=`, `source=`, config before checkpoint) still work with a deprecation message."""
    import inspect

    import torch

    import smmcl
    from support import TINY_CONFIG, build_tiny_model

    for name in smmcl.__all__:
        fn = getattr(smmcl, name)
        if not inspect.isfunction(fn):
            continue
        params = list(inspect.signature(fn).parameters)
        if name in ("load_config", "build_model"):
            params = [p for p in params if p != "source"]  # where a config is read from: a YAML file or a dict
        assert not {"cfg", "source", "weights"} & set(params), f"smmcl.{name}{inspect.signature(fn)}"
        if "checkpoint" in params and "config" in params:
            assert params.index("checkpoint") < params.index("config"), f"smmcl.{name}{inspect.signature(fn)}"

    cfg = smmcl.load_config(TINY_CONFIG)
    path = tmp_path / "model.safetensors"
    smmcl.save_pretrained(build_tiny_model(cfg, seed=0), cfg, path)
    want = smmcl.load_trained(path).state_dict()
    with pytest.warns(DeprecationWarning, match=r"smmcl.load_trained\(config, checkpoint\) is deprecated"):
        old = smmcl.load_trained(cfg, path).state_dict()
    assert all(torch.equal(want[k], old[k]) for k in want)
    with pytest.warns(DeprecationWarning, match=r"model_info\(cfg=...\) is deprecated .* write config="):
        assert smmcl.model_info(cfg=cfg, size=(64, 64)) == smmcl.model_info(cfg, size=(64, 64))
    with pytest.raises(TypeError, match="both config= and its old spelling cfg="):
        smmcl.model_info(cfg=cfg, config=cfg)
