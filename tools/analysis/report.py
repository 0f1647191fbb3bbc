"""The self-contained HTML report: one `report.html` with its PNGs beside it.

A `Report` is a title, a table of key figures, and sections holding paragraphs, tables
and figures (relative links to PNG files in the same folder), so the folder can be zipped,
mailed or served as is. No JavaScript, no external assets; written atomically.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from vehicle.files import atomic_write_text

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;
padding-bottom:.2em;margin-top:1.8em}.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:left;font-size:.92em}th{background:#f4f4f4}td.num{text-align:right;
font-variant-numeric:tabular-nums}figure{margin:1em 0}figure img{max-width:100%;
border:1px solid #eee}figcaption{color:#555;font-size:.9em}pre{background:#f6f8fa;
padding:.8em;overflow:auto;font-size:.85em}.note{color:#8a6d3b;background:#fcf8e3;
padding:.4em .8em;border-radius:4px}
"""


@dataclass
class Section:
    """One titled part of the report; `blocks` are rendered in order."""

    title: str
    """Section heading."""
    blocks: list[str] = field(default_factory=list)
    """Rendered HTML fragments."""

    def text(self, paragraph: str) -> Section:
        """Add a paragraph (escaped)."""
        self.blocks.append(f"<p>{html.escape(paragraph)}</p>")
        return self

    def note(self, paragraph: str) -> Section:
        """Add a highlighted note (escaped)."""
        self.blocks.append(f'<p class="note">{html.escape(paragraph)}</p>')
        return self

    def code(self, source: str) -> Section:
        """Add preformatted text (escaped)."""
        self.blocks.append(f"<pre>{html.escape(source)}</pre>")
        return self

    def table(self, header: list[str], rows: list[list[object]]) -> Section:
        """Add a table; numbers are right-aligned."""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = []
        for row in rows:
            cells = []
            for v in row:
                cls = (
                    ' class="num"' if isinstance(v, int | float) and not isinstance(v, bool) else ""
                )
                cells.append(f"<td{cls}>{html.escape(_fmt(v))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        self.blocks.append(f"<table><tr>{head}</tr>{''.join(body)}</table>")
        return self

    def figure(self, png: Path | str, caption: str) -> Section:
        """Add a figure linking to a PNG in the report folder (relative link)."""
        name = html.escape(Path(png).name)
        self.blocks.append(
            f'<figure><a href="{name}"><img src="{name}" alt="{html.escape(caption)}"></a>'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
        return self

    def link(self, target: Path | str, label: str) -> Section:
        """Add a link to a file in the report folder (e.g. an MP4)."""
        name = html.escape(Path(target).name)
        if name.endswith(".mp4"):
            self.blocks.append(
                f'<video controls width="640" src="{name}"></video>'
                f'<p><a href="{name}">{html.escape(label)}</a></p>'
            )
        else:
            self.blocks.append(f'<p><a href="{name}">{html.escape(label)}</a></p>')
        return self


def _fmt(v: object) -> str:
    if isinstance(v, float):
        if v != v:  # NaN
            return "–"
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


@dataclass
class Report:
    """A report: title, subtitle, key figures, sections."""

    title: str
    """Page title."""
    subtitle: str = ""
    """One line under the title (what was analysed)."""
    figures: list[tuple[str, object]] = field(default_factory=list)
    """(name, value) key figures shown first."""
    sections: list[Section] = field(default_factory=list)
    """Sections in order."""

    def section(self, title: str) -> Section:
        """Append and return a new section."""
        s = Section(title)
        self.sections.append(s)
        return s

    def render(self) -> str:
        """The whole HTML document."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        parts = [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
            f"<p class='sub'>{html.escape(self.subtitle)} · written by openracer {stamp}</p>",
        ]
        if self.figures:
            key = Section("Key figures")
            key.table(["figure", "value"], [[k, v] for k, v in self.figures])
            parts.append("".join(key.blocks))
        for s in self.sections:
            parts.append(f"<h2>{html.escape(s.title)}</h2>")
            parts.extend(s.blocks)
        parts.append("</body></html>\n")
        return "\n".join(parts)

    def write(self, out_dir: Path, name: str = "report.html") -> Path:
        """Write `out_dir/name` atomically; returns its path."""
        return atomic_write_text(Path(out_dir) / name, self.render())
