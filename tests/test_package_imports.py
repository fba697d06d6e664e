"""No import circles among keras_ser's modules (read with ``ast``, nothing is imported).

Imports must form no circle anywhere in the package, counting imports inside functions
too: the model registry imports the presets tables at call time, which import the model
modules, which do not import the registry. The test fails on any circle, such as the old
``experiment`` / ``fusion`` / ``reports`` one.

The layering of the packages is checked too: :mod:`keras_ser.frontend` reaches none of
``experiments``, ``extraction`` and ``models`` (through any chain of imports, even inside
functions), :mod:`keras_ser.data` imports neither TensorFlow nor Keras at module level, and
``layers``, ``models`` and ``data`` reach no more of keras_ser than their ``__init__`` docstrings allow.
A module over about 400 lines says in its docstring why it is one module.
"""

import ast
import pathlib

import keras_ser

ROOT = pathlib.Path(keras_ser.__file__).parent


def _modules():
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imported(node, module, is_package, modules):
    """The keras_ser modules an ``import`` / ``from ... import`` statement loads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in modules]
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    found = []
    for alias in node.names:
        if f"{base}.{alias.name}" in modules:
            found.append(f"{base}.{alias.name}")
        elif base in modules:
            found.append(base)
    return found


def _import_nodes(path, module_level_only):
    """The ``import`` statements of a file: at module level (under top-level if/try too), or all."""
    tree = ast.parse(path.read_text(), filename=str(path))
    if not module_level_only:
        return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    nodes, stack = [], list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            nodes.append(node)
        elif isinstance(node, (ast.If, ast.Try)):
            stack.extend(ast.iter_child_nodes(node))
    return nodes


def _graph(module_level_only):
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        nodes = _import_nodes(path, module_level_only)
        is_package = path.name == "__init__.py"
        graph[name] = {target for node in nodes for target in _imported(node, name, is_package, modules)
                       if target != name}
    return graph


def _circles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_the_experiments_layering():
    graph = _graph(module_level_only=True)
    assert "keras_ser.experiments.run_dir" in graph["keras_ser.experiments.reports"]
    assert "keras_ser.experiments.neural" in graph["keras_ser.experiments.runner"]
    assert not any(m.startswith("keras_ser.experiments") for m in graph["keras_ser.experiments.run_dir"])


def test_no_module_level_import_circles():
    assert _circles(_graph(module_level_only=True)) == []


def test_no_import_circle_even_inside_functions():
    assert _circles(_graph(module_level_only=False)) == []


def _reachable(graph, start):
    """Every keras_ser module that importing ``start`` can load (a module loads its parent packages too)."""
    seen, stack = set(), [start]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        parents = [name.rsplit(".", k)[0] for k in range(1, name.count("."))]
        stack.extend(m for m in [*graph.get(name, ()), *parents] if m in graph)
    return seen - {start}


def _third_party_imports(path):
    """Top-level names of the non-keras_ser packages a file imports at module level."""
    names = set()
    for node in _import_nodes(path, module_level_only=True):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif not node.level:
            names.add(node.module.split(".")[0])
    return names - {"keras_ser"}


def test_the_layering_checks_see_imports():
    graph = _graph(module_level_only=False)
    assert "keras_ser.frontend.ops" in _reachable(graph, "keras_ser.frontend.layers")
    assert "keras_ser.frontend" in _reachable(graph, "keras_ser.frontend.ops")  # the parent package
    assert "keras_ser.models.backbones" in _reachable(graph, "keras_ser.extraction.deep_spectrum")
    assert {"tensorflow", "keras"} <= _third_party_imports(ROOT / "frontend" / "layers.py")


def test_frontend_imports_no_experiments_extraction_or_models():
    graph = _graph(module_level_only=False)
    frontend = [name for name in graph if name == "keras_ser.frontend" or name.startswith("keras_ser.frontend.")]
    assert len(frontend) > 1
    for name in frontend:
        above = sorted(m for m in _reachable(graph, name)
                       if m.split(".")[1] in ("experiments", "extraction", "models"))
        assert above == [], f"{name} imports {above}"


def test_data_imports_neither_tensorflow_nor_keras():
    paths = sorted((ROOT / "data").rglob("*.py"))
    assert paths
    heavy = {str(path.relative_to(ROOT)): sorted(_third_party_imports(path) & {"tensorflow", "keras"})
             for path in paths}
    assert {name: found for name, found in heavy.items() if found} == {}


#: Lines above which a module must say in its docstring why it is one module (the house rule:
#: about 400 lines, unless it is one cohesive thing).
LONG_MODULE = 420


def test_long_modules_say_why_they_are_one_module():
    unexplained = []
    for name, path in sorted(_modules().items()):
        text = path.read_text()
        if text.count("\n") > LONG_MODULE and "One module on purpose" not in (ast.get_docstring(ast.parse(text)) or ""):
            unexplained.append(f"{name} ({text.count(chr(10))} lines)")
    assert not unexplained, "split these modules or say in their docstring why they are one: " + ", ".join(unexplained)


#: What each lower package may reach of keras_ser (said in its ``__init__`` docstring).
ALLOWED_REACH = {
    "keras_ser.layers": {"keras_ser.layers", "keras_ser.errors"},
    "keras_ser.models": {"keras_ser.models", "keras_ser.layers", "keras_ser.errors"},
    "keras_ser.data": {"keras_ser.data", "keras_ser.errors", "keras_ser.paths"},
}


def _package_of(module, packages):
    return next((p for p in sorted(packages, key=len, reverse=True) if module == p or module.startswith(p + ".")),
                module)


def test_layers_models_and_data_reach_only_what_their_docstrings_allow():
    graph = _graph(module_level_only=False)
    for package, allowed in ALLOWED_REACH.items():
        members = [name for name in graph if name == package or name.startswith(package + ".")]
        assert len(members) > 1, package
        for name in members:
            # keras_ser itself is every module's parent package (lazy attributes, nothing imported)
            beyond = sorted(m for m in _reachable(graph, name) - {"keras_ser"}
                            if _package_of(m, allowed) not in allowed)
            assert beyond == [], f"{name} reaches {beyond}"


def test_the_reach_check_sees_a_forbidden_import():
    graph = {"keras_ser": set(), "keras_ser.layers": set(), "keras_ser.layers.a": {"keras_ser.frontend.ops"},
             "keras_ser.frontend": set(), "keras_ser.frontend.ops": set()}
    reached = _reachable(graph, "keras_ser.layers.a") - {"keras_ser"}
    assert sorted(m for m in reached if _package_of(m, ALLOWED_REACH["keras_ser.layers"])
                  not in ALLOWED_REACH["keras_ser.layers"]) == ["keras_ser.frontend", "keras_ser.frontend.ops"]
