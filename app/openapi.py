"""Write openapi/openapi.json from the app (`make openapi`); a test fails when it drifts."""

import json
from pathlib import Path
from typing import Any

from app.config import Settings
from app.main import create_app

PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def current() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    PATH.parent.mkdir(exist_ok=True)
    PATH.write_text(render(current()))
    print(f"wrote {PATH}")
