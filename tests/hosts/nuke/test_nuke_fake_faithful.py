"""The fake `nuke` module and the node's use of `nuke` agree with Nuke's published API.

The reference is PyPI `types-nuke` (stubs generated from Nuke 13.2, the `nuke-stubs` folder),
read with `ast`. Checked: every public name the fake defines exists there (functions and
constants at module level, classes with every method they define), with parameters that take
the same calls (names and arity, any overload); every `nuke.X` the node code uses exists there
and in the fake, and each call `nuke.f(...)` passes arguments the stub accepts. The node's
method calls on nodes and knobs run against the fake in the other tests, so they are held to
the stubs through it.
"""

from __future__ import annotations

import ast
import glob
import os
import site
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, os.pardir, os.pardir, "support", "fake_nuke", "nuke.py")
NODE_CODE = os.path.join(HERE, os.pardir, os.pardir, os.pardir, "nuke")
SKIPPED_DUNDERS = {"__init__", "__repr__", "__getattr__"}  # constructors take *args in stubs


def stubs_folder() -> str:
    """The installed `nuke-stubs` folder (from PyPI types-nuke)."""
    for base in site.getsitepackages() + [site.getusersitepackages()] + sys.path:
        candidate = os.path.join(base, "nuke-stubs")
        if os.path.isfile(os.path.join(candidate, "_nuke.pyi")):
            return candidate
    pytest.fail("types-nuke is not installed (it is in the test extra of pyproject.toml)")


@dataclass
class Signature:
    """Parameter names (without self), how many are required, and whether *args/**kwargs."""

    names: List[str]
    required: int
    varargs: bool

    @classmethod
    def of(cls, node: ast.FunctionDef, method: bool) -> "Signature":
        params = node.args.posonlyargs + node.args.args
        if method and params and not _is_staticmethod(node):
            params = params[1:]
        names = [p.arg for p in params] + [p.arg for p in node.args.kwonlyargs]
        required = len(params) - len(node.args.defaults)
        required += sum(1 for d in node.args.kw_defaults if d is None)
        return cls(names, required, bool(node.args.vararg or node.args.kwarg))

    def accepts(self, positional: int, keywords: List[str]) -> bool:
        """Would a call with this many positional arguments and these keywords bind?"""
        if self.varargs:
            return True
        if positional > len(self.names) or any(k not in self.names[positional:] for k in keywords):
            return False
        given = set(self.names[:positional]) | set(keywords)
        return all(name in given for name in self.names[:self.required])


def _is_staticmethod(node: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)


@dataclass
class ClassInfo:
    bases: List[str]
    methods: Dict[str, List[Signature]] = field(default_factory=dict)
    attributes: List[str] = field(default_factory=list)


@dataclass
class Api:
    functions: Dict[str, List[Signature]] = field(default_factory=dict)
    classes: Dict[str, ClassInfo] = field(default_factory=dict)
    names: set = field(default_factory=set)  # constants and aliases

    def method(self, cls: str, name: str) -> Optional[List[Signature]]:
        """A method's overloads looked up through the stub class and its bases."""
        seen = set()
        todo = [cls]
        while todo:
            current = todo.pop(0)
            if current in seen or current not in self.classes:
                continue
            seen.add(current)
            info = self.classes[current]
            if name in info.methods:
                return info.methods[name]
            todo.extend(info.bases)
        return None

    def has(self, name: str) -> bool:
        return name in self.functions or name in self.classes or name in self.names


def read_module(path: str, api: Api, public_only: bool = False) -> Api:
    """Top-level functions, classes and names of one Python or stub file."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            if not (public_only and node.name.startswith("_")):
                api.functions.setdefault(node.name, []).append(Signature.of(node, False))
        elif isinstance(node, ast.ClassDef):
            if public_only and node.name.startswith("_"):
                continue
            info = api.classes.setdefault(node.name, ClassInfo(
                [b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in node.bases]))
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    info.methods.setdefault(item.name, []).append(Signature.of(item, True))
                elif isinstance(item, (ast.AnnAssign, ast.Assign)):
                    targets = [item.target] if isinstance(item, ast.AnnAssign) else item.targets
                    info.attributes += [t.id for t in targets if isinstance(t, ast.Name)]
        elif isinstance(node, (ast.AnnAssign, ast.Assign)):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            for target in targets:
                if isinstance(target, ast.Name) and not (public_only and
                                                          target.id.startswith("_")):
                    api.names.add(target.id)
        elif isinstance(node, ast.ImportFrom) and node.module == "scripts":
            api.names.update(a.asname or a.name for a in node.names)
    return api


@pytest.fixture(scope="module")
def stubs() -> Api:
    api = Api()
    for path in sorted(glob.glob(os.path.join(stubs_folder(), "*.pyi"))):
        read_module(path, api)
    return api


@pytest.fixture(scope="module")
def fake() -> Api:
    return read_module(FAKE, Api(), public_only=True)


def same_calls(fake: Signature, overloads: List[Signature]) -> bool:
    """The fake takes the calls the stub's overloads take (and no others)."""
    if any(s.varargs for s in overloads):
        return True
    if fake.varargs:
        return False
    for stub in overloads:
        if fake.names == stub.names and fake.required == stub.required:
            return True
    longest = max(overloads, key=lambda s: len(s.names))
    return (all(s.names == longest.names[:len(s.names)] for s in overloads)
            and fake.names == longest.names
            and fake.required == min(s.required for s in overloads))


def test_every_module_level_name_of_the_fake_is_in_the_stubs(fake, stubs):
    missing = sorted(n for n in list(fake.functions) + list(fake.classes) + list(fake.names)
                     if not stubs.has(n))
    assert missing == []


def test_fake_functions_take_the_stubs_parameters(fake, stubs):
    wrong = [name for name, (signature, *_) in fake.functions.items()
             if not same_calls(signature, stubs.functions[name])]
    assert wrong == []


def test_fake_classes_define_only_stub_methods_with_their_parameters(fake, stubs):
    problems = []
    for cls, info in fake.classes.items():
        for name, (signature, *_) in info.methods.items():
            if name in SKIPPED_DUNDERS or (name.startswith("_") and not name.startswith("__")):
                continue
            overloads = stubs.method(cls, name)
            if overloads is None:
                problems.append(f"{cls}.{name} is not in the stubs")
            elif not same_calls(signature, overloads):
                problems.append(f"{cls}.{name}{tuple(signature.names)} differs from the stubs")
        for attribute in info.attributes:
            if not attribute.startswith("_"):
                problems.append(f"{cls}.{attribute}: public class attribute not in the API")
    assert problems == []


def node_uses() -> List[tuple]:
    """(file, line, name, call node or None) for every `nuke.X` in the node code."""
    found = []
    for path in sorted(glob.glob(os.path.join(NODE_CODE, "**", "*.py"), recursive=True)):
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        calls = {id(n.func): n for n in ast.walk(tree) if isinstance(n, ast.Call)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "nuke"):
                found.append((os.path.relpath(path, NODE_CODE), node.lineno, node.attr,
                              calls.get(id(node))))
    return found


def test_the_node_code_uses_nuke(fake, stubs):
    uses = node_uses()
    assert {"createNode", "executeInMainThread", "ProgressTask", "addBeforeFrameRender",
            "addOnScriptLoad", "addOnCreate", "execute"} <= {u[2] for u in uses}


def test_every_nuke_name_the_node_uses_is_in_the_stubs_and_the_fake(fake, stubs):
    problems = [f"{f}:{line} nuke.{name}" for f, line, name, _ in node_uses()
                if not stubs.has(name) or not fake.has(name)]
    assert problems == []


def test_the_node_calls_nuke_functions_with_arguments_the_stubs_accept(stubs):
    problems = []
    for path, line, name, call in node_uses():
        if call is None or name not in stubs.functions:
            continue
        if any(isinstance(a, ast.Starred) for a in call.args) or \
                any(k.arg is None for k in call.keywords):
            problems.append(f"{path}:{line} nuke.{name}: *args/**kwargs hide the arity")
            continue
        keywords = [k.arg for k in call.keywords]
        if not any(s.accepts(len(call.args), keywords) for s in stubs.functions[name]):
            problems.append(f"{path}:{line} nuke.{name}({len(call.args)} positional, "
                            f"{keywords}) does not match the stubs")
    assert problems == []


def test_the_checks_catch_a_wrong_signature(stubs):
    """The comparison is not vacuous: a fake `execute(node)` or `toNode()` would be refused."""
    tree = ast.parse("def execute(node): ...\ndef toNode(): ...\ndef frame(f=1): ...")
    execute, to_node, frame = (Signature.of(n, False) for n in tree.body)
    assert not same_calls(execute, stubs.functions["execute"])
    assert not same_calls(to_node, stubs.functions["toNode"])
    assert same_calls(frame, stubs.functions["frame"])
