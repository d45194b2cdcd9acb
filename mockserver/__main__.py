"""``python -m mockserver``: the fake server without the test kit."""

from __future__ import annotations

import sys

from mockserver.serve import main

if __name__ == "__main__":
    sys.exit(main())
