"""What every framework integration promises alike: `import convstore` imports no framework,
and an integration whose framework is missing says which extra installs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: Each integration module, the extra that installs its framework, and the framework's packages.
INTEGRATIONS = {
    "openai_agents": ("openai-agents", ["agents", "openai"]),
    "langgraph": ("langgraph", ["langgraph", "langchain_core"]),
    "pydantic_ai": ("pydantic-ai", ["pydantic_ai", "pydantic"]),
    "tenacity": ("tenacity", ["tenacity"]),
    "stamina": ("stamina", ["stamina"]),
}
FRAMEWORKS = sorted({package for _, packages in INTEGRATIONS.values() for package in packages})


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_import_convstore_imports_no_framework() -> None:
    """`import convstore` (and `convstore.integrations`) leaves every framework unimported."""
    result = python(
        "import sys, convstore, convstore.integrations\n"
        f"print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("module", sorted(INTEGRATIONS))
def test_a_missing_framework_names_the_extra_that_installs_it(module: str) -> None:
    """With its framework unimportable, an integration raises ConfigurationError naming it."""
    extra, packages = INTEGRATIONS[module]
    blocked = dict.fromkeys(packages)
    result = python(
        "import sys\n"
        f"sys.modules.update({blocked!r})\n"
        "import convstore\n"
        "try:\n"
        f"    import convstore.integrations.{module}\n"
        "except convstore.ConfigurationError as error:\n"
        "    print(error)\n"
    )
    assert result.returncode == 0, result.stderr
    assert f"convstore.integrations.{module} needs" in result.stdout
    assert f"pip install 'convstore[{extra}]'" in result.stdout
