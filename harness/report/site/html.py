"""The viewer's page shell: one inline stylesheet, one small inline script, escaping and tables.

Every page is one self-contained file: CSS inline, no fonts, images or scripts from
anywhere (a Content-Security-Policy says so to the browser), so the site opens from a
folder, an archive or a USB stick, offline. The one script (filtering and search of a
table) is allowed by its sha256 in that policy, not by ``'unsafe-inline'``: were a string
from a received dossier ever to slip through unescaped, a script in it would still not
run. Every value from data goes through :func:`e` (``html.escape`` with quotes).

Pages are readable and navigable without JavaScript: the filter form is ``hidden`` and
only the script reveals it; everything else is plain semantic HTML (landmarks, headings,
``<th scope>``, labelled controls, a visible focus ring, a skip link).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Iterable, Sequence

CSS = """
*{box-sizing:border-box}[hidden]{display:none!important}
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:0;color:#1b1f24;
background:#fff;line-height:1.45}
main{max-width:72rem;margin:0 auto;padding:1rem 1.2rem 3rem}
header.top{background:#f6f8fa;border-bottom:1px solid #d0d7de;padding:.5rem 1.2rem}
header.top nav{max-width:72rem;margin:0 auto;font-size:.95rem}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:.5rem;background:#fff;padding:.3rem;z-index:9}
a{color:#0a4f9e}a:focus,button:focus,select:focus,input:focus,summary:focus,[tabindex]:focus{outline:3px solid #bf3989;
outline-offset:2px}
h1{font-size:1.45rem;margin:.6rem 0}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de;
padding-bottom:.2rem}h3{font-size:1rem;margin-top:1.4rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .45rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.text{white-space:pre-wrap;max-width:28rem}
.state{padding:.7rem 1rem;border-radius:.4rem;margin:.8rem 0;border:2px solid}
.ok{background:#dafbe1;border-color:#1a7f37}.bad{background:#ffebe9;border-color:#cf222e}
.warn{background:#fff8c5;border-color:#9a6700}
.tag{font-weight:700;white-space:nowrap}
.tag.ok,.tag.bad,.tag.warn{border:1px solid;border-radius:.3rem;padding:0 .3rem}
.v-PASS,.v-refusal,.v-consistent{color:#116329}.v-FAIL,.v-error,.v-inconsistent{color:#a40e26}
.v-INCONCLUSIVE,.v-unparsed,.v-unverifiable{color:#7d4e00}
.filters{display:flex;flex-wrap:wrap;gap:.6rem 1.2rem;align-items:end;margin:.6rem 0;padding:.6rem;
background:#f6f8fa;border:1px solid #d0d7de;border-radius:.4rem}
.filters label{display:flex;flex-direction:column;font-size:.85rem;font-weight:600}
.filters select,.filters input{font:inherit;padding:.2rem}
.pages{margin:.6rem 0}.pages a,.pages span{margin-right:.6rem}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#57606a}
svg.plot{max-width:100%;height:auto}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(26rem,1fr));gap:0 1.5rem}
.nw{white-space:nowrap}
nav.toc{margin:.4rem 0}nav.toc a{margin-right:1rem}
footer{margin-top:2.5rem;color:#57606a;font-size:.85rem}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.4rem 0}
dl.kv dt{font-weight:600}dl.kv dd{margin:0;overflow-wrap:anywhere}
"""

SCRIPT = """(function(){
var forms=document.querySelectorAll('form.filters');
Array.prototype.forEach.call(forms,function(f){
var table=document.getElementById(f.getAttribute('data-table'));if(!table)return;
var rows=Array.prototype.slice.call(table.tBodies[0].rows);
var sels=Array.prototype.slice.call(f.querySelectorAll('select'));
var q=f.querySelector('input[type=search]');var out=f.querySelector('output');
function apply(){var t=q?q.value.toLowerCase():'';var n=0;
rows.forEach(function(r){var ok=sels.every(function(s){
return !s.value||r.getAttribute('data-'+s.getAttribute('data-field'))===s.value;});
if(ok&&t)ok=r.textContent.toLowerCase().indexOf(t)>=0;r.hidden=!ok;if(ok)n++;});
if(out)out.textContent=n+' of '+rows.length+' shown';}
f.addEventListener('input',apply);f.addEventListener('change',apply);
f.addEventListener('submit',function(ev){ev.preventDefault();});
f.hidden=false;apply();});
})();"""

SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CSP = (f"default-src 'none'; style-src 'unsafe-inline'; script-src '{SCRIPT_HASH}'; img-src data:; "
       "base-uri 'none'; form-action 'none'")


_SPECIAL = re.compile(r"[&<>\"']")


def e(x: object) -> str:
    """Escape any value for HTML text or a quoted attribute (``html.escape``; most values need
    nothing, and a C-speed search finds those first: a site of 1,000 runs escapes millions)."""
    s = x if isinstance(x, str) else str(x)
    return html.escape(s, quote=True) if _SPECIAL.search(s) else s


def page(title: str, body: str, *, crumbs: Sequence[tuple[str, str | None]] = (), script: bool = False,
         footer: str = "") -> str:
    """A whole HTML document: ``crumbs`` are (text, href or None for the current page)."""
    nav = " \u203a ".join(f'<a href="{e(h)}">{e(t)}</a>' if h else f'<span aria-current="page">{e(t)}</span>'
                          for t, h in crumbs)
    return "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        '<a class="skip" href="#main">Skip to content</a>',
        f'<header class="top"><nav aria-label="Breadcrumb">{nav}</nav></header>' if nav else "",
        f'<main id="main" tabindex="-1"><h1>{e(title)}</h1>', body,
        f"<footer>{footer}</footer>" if footer else "", "</main>",
        f"<script>{SCRIPT}</script>" if script else "", "</body></html>\n",
    ])


def table(head: Sequence[str], rows: Iterable[Sequence[str]], *, ident: str = "", numeric: Iterable[int] = (),
          raw: Iterable[int] = (), caption: str = "") -> str:
    """A table of escaped cells; columns in ``raw`` are already HTML (escaped by the caller)."""
    num, pre = set(numeric), set(raw)
    out = [f'<table{f" id={chr(34)}{e(ident)}{chr(34)}" if ident else ""}>']
    if caption:
        out.append(f"<caption>{e(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f'<th scope="col">{e(h)}</th>' for h in head) + "</tr></thead><tbody>")
    for row in rows:
        cells = []
        for i, c in enumerate(row):
            text = c if i in pre else e(c)
            cells.append(f'<td class="num">{text}</td>' if i in num else f"<td>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def kv(pairs: Iterable[tuple[str, str]], *, raw: bool = False) -> str:
    """A definition list of (label, value) pairs; values are escaped unless ``raw``."""
    return '<dl class="kv">' + "".join(f"<dt>{e(k)}</dt><dd>{v if raw else e(v)}</dd>" for k, v in pairs) + "</dl>"


def tag(word: str, cls: str) -> str:
    """A short status word that never relies on colour alone (the word is the meaning)."""
    return f'<span class="tag {e(cls)}">{e(word)}</span>'


def verdict(word: str | None) -> str:
    """A gate or sample verdict, coloured by its class and always written out."""
    w = word or "n/a"
    return f'<span class="tag v-{e(w.replace(" ", "_"))}">{e(w)}</span>'


def filter_form(table_id: str, fields: Sequence[tuple[str, str, Sequence[str]]], note: str) -> str:
    """Filter selects (field, label, values) and a search box for the table ``table_id``.

    The form is ``hidden`` until the script shows it, so with JavaScript off nothing on the
    page pretends to work; a ``<noscript>`` note says every row is listed instead.
    """
    sels = "".join(
        f'<label>{e(label)}<select data-field="{e(field)}" name="{e(field)}"><option value="">all</option>'
        + "".join(f'<option value="{e(v)}">{e(v)}</option>' for v in values) + "</select></label>"
        for field, label, values in fields)
    return (f'<form class="filters" data-table="{e(table_id)}" hidden role="search" '
            f'aria-label="Filter the rows of the table below">{sels}'
            '<label>Search<input type="search" name="q" placeholder="id, prompt or response text"></label>'
            f'<output aria-live="polite"></output></form><noscript><p>{e(note)}</p></noscript>')


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x * 100:.{digits}f}%"


def ci(lo: float | None, hi: float | None) -> str:
    return "n/a" if lo is None or hi is None else f"[{lo * 100:.1f}, {hi * 100:.1f}]"


def clip(text: str, limit: int) -> str:
    """``text`` cut at ``limit`` characters, saying how long it was (keeps every page small)."""
    return text if len(text) <= limit else f"{text[:limit]}\u2026 [cut: {len(text):,} characters in all]"
