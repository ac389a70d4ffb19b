# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Blackout and maintenance calendars: load sources, evaluate a moment and a planned window.

    windows = load_windows(sources, default_tz="UTC", base_dir=None, itsm=None)
    answer = evaluate(windows, now=aware_datetime, planned=(start, end) or None, scope={...})

See docs/calendars.md for the source formats and the DST behaviour.
"""

from __future__ import annotations

from .evaluate import evaluate
from .model import Answer, CalendarError, Window, WindowHit
from .sources import CalendarUnavailable, load_windows

__all__ = ["Answer", "CalendarError", "CalendarUnavailable", "Window", "WindowHit", "evaluate", "load_windows"]
