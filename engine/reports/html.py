"""The HTML every report shares: one style sheet, escaping, tables and embedded figures.

Reports are single self-contained files: the style sheet sits in the page
and figures are embedded as base64 PNG data, with the PNG file beside the
page linked from the caption. Every helper returns an HTML string; text
passed as ``text`` is escaped here, arguments named ``*_html`` are trusted
HTML built by the caller.

Examples
--------
>>> print(text_table(["metric", "value"], [["a < b", "1"]]))
<table><tr><th class="l">metric</th><th>value</th></tr><tr><td class="l">a &lt; b</td><td>1</td></tr></table>
>>> page("t", "<p>x</p>").splitlines()[-1]
'</body></html>'
"""  # noqa: E501

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "CSS",
    "REPORT_FILE",
    "column_label",
    "escape",
    "figure",
    "file_link",
    "page",
    "png_data_uri",
    "table",
    "text_table",
]

#: File name of every report page.
REPORT_FILE = "report.html"
#: The style sheet of every report page (validation, backtest, pipeline).
CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em;
       color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px;
        display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
td.l { white-space: normal; overflow-wrap: anywhere; min-width: 6em; }
.flag { color: #b00000; font-weight: bold; } .ok { color: #176617; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #ddd; }
p.note { color: #7a4d00; }
"""


#: Words of column names shown otherwise in a report's table headers.
_WORDS = {"auc": "AUC", "val": "validation", "id": "", "se": "s.e.", "ci": "95 % CI",
          "holm": "(Holm)", "bh": "(BH)", "n": "n", "null": "null"}  # fmt: skip


def column_label(name: str) -> str:
    """A data column's name as a table header: words, not identifiers.

    Examples
    --------
    >>> [column_label(c) for c in ("model_id", "auc_ci_low", "auc_p_value_holm",
    ...                            "min_val_loss_epoch", "permutation_p_value_se", "pattern")]
    ['model', 'AUC 95 % CI low', 'AUC p (Holm)', 'min validation loss epoch', \
'permutation p s.e.', 'pattern']
    """
    text = " ".join(w for w in (_WORDS.get(w, w) for w in name.split("_")) if w)
    return text.replace("p value", "p")


def escape(text: Any) -> str:
    """``str(text)`` with ``&``, ``<``, ``>`` and quotes escaped.

    Examples
    --------
    >>> escape("<b>")
    '&lt;b&gt;'
    """
    return html.escape(str(text))


def page(title: str, body_html: str) -> str:
    """A complete HTML page: ``title`` (escaped), the shared :data:`CSS`, then ``body_html``.

    Examples
    --------
    >>> page("a & b", "<h1>x</h1>").splitlines()[2]
    '<title>a &amp; b</title>'
    """
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)}</title>",
            f"<style>{CSS}</style></head><body>",
            body_html,
            "</body></html>",
        ]
    )


def table(header_html: Sequence[str], rows_html: Iterable[Sequence[str]]) -> str:
    """A table from ready cells: ``<th>`` strings for the header, ``<td>`` strings per row.

    Examples
    --------
    >>> table(["<th>a</th>"], [["<td>1</td>"], ["<td>2</td>"]])
    '<table><tr><th>a</th></tr><tr><td>1</td></tr><tr><td>2</td></tr></table>'
    """
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows_html)
    return f"<table><tr>{''.join(header_html)}</tr>{body}</table>"


def text_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table of plain text, escaped; the first column is left-aligned (row labels).

    Examples
    --------
    >>> text_table(["k", "v"], [["x", "1"]])
    '<table><tr><th class="l">k</th><th>v</th></tr><tr><td class="l">x</td><td>1</td></tr></table>'
    """

    def cells(values: Sequence[str], tag: str) -> list[str]:
        return [
            f'<{tag} class="l">{escape(v)}</{tag}>' if k == 0 else f"<{tag}>{escape(v)}</{tag}>"
            for k, v in enumerate(values)
        ]

    return table(cells(columns, "th"), (cells(row, "td") for row in rows))


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for embedding a PNG in a page.

    Examples
    --------
    >>> png_data_uri(b"PNG")
    'data:image/png;base64,UE5H'
    """
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def file_link(file: str) -> str:
    """A link to a file beside the page, the file name as its text.

    Examples
    --------
    >>> file_link("a.png")
    '<a href="a.png">a.png</a>'
    """
    return f'<a href="{escape(file)}">{escape(file)}</a>'


def figure(png: bytes, *, alt: str, caption_html: str) -> str:
    """An embedded PNG figure with its caption.

    Parameters
    ----------
    png : bytes
        The PNG file's bytes, embedded as base64.
    alt : str
        Alternative text (escaped).
    caption_html : str
        The caption, already HTML (escape its text with :func:`escape`).

    Examples
    --------
    >>> figure(b"PNG", alt="equity", caption_html="Equity")
    '<figure><img src="data:image/png;base64,UE5H" alt="equity"><figcaption>Equity</figcaption></figure>'
    """  # noqa: E501
    return (
        f'<figure><img src="{png_data_uri(png)}" alt="{escape(alt)}">'
        f"<figcaption>{caption_html}</figcaption></figure>"
    )
