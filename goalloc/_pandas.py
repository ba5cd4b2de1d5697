"""pandas, imported when a DataFrame is asked for (extra: goalloc[pandas]).

``import goalloc`` never needs pandas; each call that returns a DataFrame
imports it here, and says how to install it when it is missing.
"""
from __future__ import annotations

from types import ModuleType


def pandas(what: str) -> ModuleType:
    """The pandas module; ImportError naming what needed it and the extra
    that installs it when pandas is not installed."""
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError(
            f"{what} needs pandas, which is not installed: pip install "
            f"'goalloc[pandas]' (or pip install pandas)",
            name="pandas") from e
    return pd
