"""Every public class and function has an Examples section, and it runs.

The examples are doctests, run here for each name in ``skmlp.__all__`` (its
docstring and its own methods'), so the README's test command and CI run them,
on the newest and the oldest stack. An example whose printed output changes
fails. Examples print only what every machine prints alike (comparisons,
labels, numbers through format strings), since NumPy 1 and 2 write scalars
differently.
"""

import doctest
import re

import pytest

import skmlp

PUBLIC = sorted(name for name in skmlp.__all__ if not name.startswith("_"))
# The optional package an example needs: it skips, saying so, where it is absent.
NEEDS = {"LossCurveDisplay": "matplotlib"}


def _documented(name):
    """A public name and its own public methods (not what it borrows, such as
    scikit-learn's r2_score), as (qualified name, object)."""
    obj = getattr(skmlp, name)
    yield f"skmlp.{name}", obj
    for attribute, value in vars(obj).items() if isinstance(obj, type) else ():
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        elif isinstance(value, property):
            value = value.fget
        module = getattr(value, "__module__", None) or ""
        if not attribute.startswith("_") and module.startswith("skmlp"):
            yield f"skmlp.{name}.{attribute}", value


def _doctests(name):
    """The doctests in the docstrings of a public name and its methods."""
    finder = doctest.DocTestFinder(recurse=False, exclude_empty=True)
    return [
        test
        for qualified, obj in _documented(name)
        for test in finder.find(obj, qualified, module=False, globs={})
        if test.examples
    ]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_has_an_examples_section(name):
    docstring = getattr(skmlp, name).__doc__ or ""
    assert re.search(r"^\s*Examples\n\s*--------\n", docstring, flags=re.M), name
    assert _doctests(name), f"skmlp.{name}'s Examples hold no >>> lines"


@pytest.mark.parametrize("name", PUBLIC)
def test_examples_print_what_they_show(name):
    if name in NEEDS:
        package = pytest.importorskip(
            NEEDS[name], reason=f"{name}'s example needs {NEEDS[name]}"
        )
        if NEEDS[name] == "matplotlib":
            package.use("Agg")  # figures without a window
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    report = []
    for test in _doctests(name):
        runner.run(test, out=report.append)
    if runner.failures:
        pytest.fail("".join(report), pytrace=False)
