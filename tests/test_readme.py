"""The README's two commands are what a new user runs, and CI runs the test command verbatim."""

import re

from tests.helpers import ROOT


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_has_the_two_commands_and_ci_runs_the_test_command_verbatim():
    main, tests = readme_commands()[:2]
    assert main.endswith("&& python -m bench") and "torch==2.13.0" in main
    assert tests.endswith("&& python -m pytest") and "torch==2.13.0" in tests
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci
    assert "python -m bench" in ci
