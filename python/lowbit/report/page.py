"""The report's HTML page: one self-contained file next to its PNGs and CSVs."""
import html
from typing import List, Tuple

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; }
img.broken { outline: 3px solid #c00; min-height: 2em; }
.note, .files { color: #555; font-size: .85em; }
.answer { background: #f6fbf2; border-left: 4px solid #5a5; padding: .6em 1em; }
code { background: #f3f3f3; padding: 0 .2em; }
#image-check { color: #c00; font-weight: bold; }
"""

# Every <img> is checked once the page has loaded: a missing or unreadable figure gets a red
# outline and a note at the top, instead of silently showing nothing.
SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images), broken = [];
  imgs.forEach(function (img) {
    if (!img.complete || img.naturalWidth === 0) { img.classList.add('broken'); broken.push(img.getAttribute('src')); }
  });
  document.body.setAttribute('data-images-loaded', String(imgs.length - broken.length));
  document.body.setAttribute('data-images-broken', String(broken.length));
  if (broken.length) {
    document.getElementById('image-check').textContent = 'Figures that did not load: ' + broken.join(', ');
  }
});
"""


def esc(text) -> str:
    return html.escape(str(text))


def markdown_inline(text: str) -> str:
    """The answer sentences use **bold**; nothing else needs converting."""
    parts = esc(text).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def page(title: str, intro: List[str], summary_html: str, sections: List[Tuple[str, List[str]]],
         footer: List[str]) -> str:
    body = [f"<h1>{esc(title)}</h1>", '<p id="image-check"></p>']
    body += [f'<p class="answer">{markdown_inline(p)}</p>' for p in intro]
    body.append(summary_html)
    for heading, parts in sections:
        body.append(f"<h2>{esc(heading)}</h2>")
        body.extend(parts)
    body += [f'<p class="note">{markdown_inline(p)}</p>' for p in footer]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{STYLE}</style><script>{SCRIPT}</script></head>\n"
            "<body>\n" + "\n".join(body) + "\n</body></html>\n")


def figure(src: str, caption: str) -> str:
    return f'<h3>{esc(caption)}</h3><img src="{esc(src)}" alt="{esc(caption)}">'


def table_block(table, csv_rel: str) -> str:
    return (f"<h3>{esc(table.title)}</h3>{table.html()}"
            f'<p class="files">CSV: <a href="{esc(csv_rel)}">{esc(csv_rel)}</a></p>')
