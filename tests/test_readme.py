"""The README's promises: its quick start runs, its test command is CI's."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = [b.strip() for b in _blocks("bash")]
    assert len(commands) == 2
    demo, tests = commands
    assert demo.endswith("-m skmlp") and tests.endswith("-m pytest")
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci_lines


def test_quick_start_runs_and_is_at_most_ten_lines(capsys):
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", quick_start, flags=re.S)
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    exec(compile(code, "README.md", "exec"), {})
    accuracy = float(capsys.readouterr().out.split()[-1])
    assert accuracy > 0.9


def test_first_screen_says_in_two_lines_what_skmlp_is_for_and_what_to_pick():
    below_title = README.split("\n", 1)[1].split("\n## ", 1)[0]
    what_for, which = [line for line in below_title.splitlines() if line.strip()][:2]
    assert "tabular data" in what_for and "scikit-learn" in what_for
    assert "BackpropClassifier" in which and "BackpropRegressor" in which
