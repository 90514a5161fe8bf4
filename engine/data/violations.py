"""Rule violations in bars and the error that lists them.

A :class:`Violation` names the source file, the ticker, the 1-based data row
(the header is not counted), the date and the rule broken, so a user can open
the file and find the line. :class:`BarsValidationError` carries every
violation found and lists the first :data:`MAX_LISTED_VIOLATIONS` of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "MAX_LISTED_VIOLATIONS",
    "BarsValidationError",
    "Violation",
    "format_violation",
]

#: How many violations an error message lists before saying "and N more".
MAX_LISTED_VIOLATIONS = 10


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule in one row (or, for ``missing_columns``, one source).

    Attributes
    ----------
    file : str
        The source the row came from (a path, or ``"<frame>"`` for in-memory data).
    ticker : str or None
        The row's ticker, ``None`` when it is empty.
    row : int or None
        1-based data row in the source (header not counted); ``None`` for
        source-level rules such as ``missing_columns``.
    date : str or None
        ISO date of the row, or the raw text when it could not be parsed.
    rule : str
        Stable rule id, a key of :data:`RULES`.
    detail : str
        The offending values, e.g. ``"volume=-5.0 < 0"``.
    """

    file: str
    ticker: str | None
    row: int | None
    date: str | None
    rule: str
    detail: str

    def to_dict(self) -> dict[str, object]:
        """Return the violation as a JSON-friendly dict."""
        return {
            "file": self.file,
            "ticker": self.ticker,
            "row": self.row,
            "date": self.date,
            "rule": self.rule,
            "detail": self.detail,
        }


def format_violation(v: Violation) -> str:
    """Render a violation as one line naming file, row, ticker, date and rule.

    Examples
    --------
    >>> format_violation(Violation("AAPL.csv", "AAPL", 3, "2020-01-03", "negative_volume",
    ...                            "volume=-5.0 < 0"))
    'AAPL.csv: row 3, ticker AAPL, date 2020-01-03: negative_volume (volume=-5.0 < 0)'
    """
    where = [f"row {v.row}"] if v.row is not None else []
    if v.ticker is not None:
        where.append(f"ticker {v.ticker}")
    if v.row is not None:
        where.append(f"date {v.date if v.date not in (None, '') else '<empty>'}")
    loc = f"{v.file}: {', '.join(where)}" if where else v.file
    return f"{loc}: {v.rule} ({v.detail})"


class BarsValidationError(ValueError):
    """Bars broke one or more rules; ``.violations`` holds every one of them.

    The message starts with a one-line summary, then lists up to
    :data:`MAX_LISTED_VIOLATIONS` violations (file, row, ticker, date, rule)
    and says how many more there are.

    Parameters
    ----------
    violations : sequence of Violation
        Every violation found (must not be empty).
    headline : str, optional
        Replaces the default first line.
    hint : str, optional
        Appended as the last line (e.g. how to drop bad rows instead).
    """

    def __init__(
        self,
        violations: Sequence[Violation],
        headline: str | None = None,
        hint: str | None = None,
    ) -> None:
        violations = list(violations)
        if not violations:
            raise ValueError("BarsValidationError needs at least one violation, got none")
        self.violations: list[Violation] = violations
        files = sorted({v.file for v in violations})
        shown_files = ", ".join(files[:3])
        if len(files) > 3:
            shown_files += f" and {len(files) - 3} more"
        counts: dict[str, int] = {}
        for v in violations:
            counts[v.rule] = counts.get(v.rule, 0) + 1
        by_rule = ", ".join(f"{rule}: {n}" for rule, n in counts.items())
        if headline is None:
            headline = (
                f"invalid bars in {shown_files}: {len(violations)} "
                f"violation{'s' if len(violations) != 1 else ''} ({by_rule})"
            )
        lines = [headline]
        lines += ["  " + format_violation(v) for v in violations[:MAX_LISTED_VIOLATIONS]]
        if len(violations) > MAX_LISTED_VIOLATIONS:
            lines.append(f"  ... and {len(violations) - MAX_LISTED_VIOLATIONS} more violations")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))
