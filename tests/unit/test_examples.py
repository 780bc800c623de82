"""The walk-through's sample files are exactly what their generator writes."""

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"


def test_the_sample_files_are_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("generate", EXAMPLES / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    built = generate.build()
    assert set(built) == {"accounts.json", "stakeholders.json", "history.json"}
    for name, text in built.items():
        assert (EXAMPLES / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run .venv/bin/python docs/examples/generate.py"
        )
