"""`--json`: the one JSON-lines writer, one object per line on standard output, for every command."""

from __future__ import annotations

import json
import sys
from typing import Any

from hfwizard.events import Event, to_json


def write(obj: dict[str, Any]) -> None:
    """One JSON object as one line, flushed at once (a reader acts on each line as it comes)."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()


class JsonView:
    """Events as JSON lines on stdout; notes (what a person reads) on stderr."""

    def show(self, event: Event) -> None:
        write(to_json(event))

    def note(self, text: str, error: bool = False) -> None:
        sys.stderr.write(text + "\n")

    def close(self) -> None:
        pass
