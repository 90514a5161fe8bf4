"""Every kernel has a pure-Python twin, and a twin never calls compiled code."""

from __future__ import annotations

import ast
import inspect

import pytest
from numba.core.dispatcher import Dispatcher

from kernels import backtest, features, garch, rolling

MODULES = [rolling, garch, features, backtest]


def _kernels(module):
    return {name: obj for name, obj in vars(module).items() if isinstance(obj, Dispatcher)}


def _twins(module):
    return {
        name: obj
        for name, obj in vars(module).items()
        if name.endswith("_py") and inspect.isfunction(obj) and obj.__module__ == module.__name__
    }


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_kernel_is_its_twin_compiled(module):
    kernels = _kernels(module)
    assert kernels, f"{module.__name__} defines no kernel"
    for name, kernel in kernels.items():
        assert kernel.py_func is getattr(module, f"{name}_py", None), (
            f"{module.__name__}.{name} is not njit({name}_py)"
        )


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_twins_call_only_twins_and_plain_python(module):
    """A twin that called a kernel would run compiled code in its 'Python' run."""
    for name, twin in _twins(module).items():
        tree = ast.parse(inspect.getsource(twin))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                callee = twin.__globals__.get(node.func.id)
                assert not isinstance(callee, Dispatcher), (
                    f"{module.__name__}.{name} calls the compiled {node.func.id}; "
                    f"call {node.func.id}_py instead"
                )
