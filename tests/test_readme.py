"""The README's two commands are what a new user runs (the main job; the tests), and CI runs the
full test command the README gives beside them verbatim."""

import re

from tests.helpers import ROOT


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_has_the_two_commands_and_ci_runs_the_full_test_command_verbatim():
    main, tests, full = readme_commands()[:3]
    assert main.endswith("&& python -m bench") and "torch==2.13.0" in main
    assert tests.endswith("&& python -m pytest") and "torch==2.13.0" in tests
    assert full == f"{tests} --full"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert full in ci
    assert "python -m bench" in ci
