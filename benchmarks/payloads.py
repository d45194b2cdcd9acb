"""The create body the server and scale benchmarks send: every optional field set, so the
validator, the rules and the journal do all of their work (imported from the benchmarks' own
folder, which is first on ``sys.path`` when a benchmark script runs)."""

from __future__ import annotations

from typing import Any

FULL_CREATE: dict[str, Any] = {
    "model": "kling-v2-6",
    "multi_prompt": [{"prompt": "a red fox running through fresh snow at dawn", "duration": 5}],
    "mode": "pro",
    "size": "1080P",
    "duration": 5,
    "sound": "on",
    "cfg_scale": 0.5,
    "negative_prompt": "blur, low quality",
}
