"""CloudWatch's embedded metric format, locally: moto does not turn EMF log lines into metrics, so
the local cloud reads the functions' EMF lines off stdout and keeps the totals (printed in the run's
summary), passing every other line through."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import TextIO


class EmfTally:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.totals: Counter[str] = Counter()
        self._buffer = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            while "\n" in self._buffer:
                line, self._buffer = self._buffer.split("\n", 1)
                if line.startswith('{"_aws"'):
                    self._count(line)
                else:
                    self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def _count(self, line: str) -> None:
        try:
            document = json.loads(line)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    values = document.get(metric["Name"], 0)
                    self.totals[metric["Name"]] += int(sum(values) if isinstance(values, list) else values)
        except (ValueError, KeyError, TypeError):
            self.stream.write(line + "\n")
