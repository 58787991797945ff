"""Student content rendered inert: sanitized HTML, math as MathML, no script anywhere.

A submission controls the markdown of its written answers and every output of its code cells.
nbconvert, which renders both for Formgrader's grading page and for the feedback pages, would
pass raw HTML, SVG and JavaScript through. nbgrader_config.py wires in the two hooks below for
every HTMLExporter of the course:

- `markdown_to_html` replaces nbconvert's markdown2html filter: markdown is rendered with math
  turned into MathML when the page is written (no MathJax, no network), then sanitized;
- the `InertOutputs` preprocessor keeps only outputs that cannot act: text, PNG/JPEG/GIF images,
  SVG (shown as an <img>, where it cannot script), LaTeX as text, and sanitized HTML; markdown
  outputs become sanitized HTML; JavaScript, widgets and every other MIME type are dropped.

The sanitizer keeps text, headings, lists, links (http, https, mailto, relative), tables, code,
images from data:image URIs or relative paths, and MathML; it escapes every other tag (so a grader
sees a <script> as text) and drops every attribute but a few plain ones: no event handlers, no
style, no id (which could clobber Formgrader's score fields). The pages the course writes to files
carry the policy of course/csp.py as well: no script at all, nothing from the network.
"""

import re

import bleach
from jinja2 import pass_context
from latex2mathml.converter import convert as latex_to_mathml
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors import Preprocessor

HTML_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
MATHML_TAGS = {
    "math",
    "menclose",
    "merror",
    "mfrac",
    "mi",
    "mn",
    "mo",
    "mover",
    "mpadded",
    "mphantom",
    "mroot",
    "mrow",
    "ms",
    "mspace",
    "msqrt",
    "mstyle",
    "msub",
    "msubsup",
    "msup",
    "mtable",
    "mtd",
    "mtext",
    "mtr",
    "munder",
    "munderover",
}
MATHML_ATTRIBUTES = {
    "accent",
    "accentunder",
    "columnalign",
    "columnspacing",
    "depth",
    "display",
    "displaystyle",
    "fence",
    "height",
    "linethickness",
    "lspace",
    "mathvariant",
    "maxsize",
    "minsize",
    "movablelimits",
    "notation",
    "rowalign",
    "rowspacing",
    "rspace",
    "scriptlevel",
    "separator",
    "stretchy",
    "width",
}
PLAIN_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "abbr": {"title"},
}
# Classes a student's content keeps: syntax highlighting (Pygments' short token classes) and pandas'
# tables. Any other class could borrow the page's styles, to hide an answer or fake a score label.
KEPT_CLASSES = {
    "div": re.compile(r"highlight"),
    "table": re.compile(r"dataframe"),
    "span": re.compile(r"[a-z]{1,2}[0-9]?|err|esc|hll"),
}
IMAGE_DATA_URI = re.compile(r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*\Z", re.I)
URI_SCHEME = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.-]*:")

# Outputs kept as they are: the template escapes text and shows images (SVG too) as <img>.
KEPT_OUTPUTS = {"text/plain", "text/latex", "image/png", "image/jpeg", "image/gif", "image/svg+xml"}
IMAGE_METADATA = {"width", "height"}


def _allowed_attribute(tag, name, value):
    if tag in MATHML_TAGS:
        return name in MATHML_ATTRIBUTES
    if name == "class":
        kept = KEPT_CLASSES.get(tag)
        return bool(kept and value.split() and all(kept.fullmatch(token) for token in value.split()))
    if name not in PLAIN_ATTRIBUTES.get(tag, ()):
        return False
    if tag == "img" and name == "src":  # an image is inert; only embedded ones or files beside the page
        return bool(IMAGE_DATA_URI.match(value) or not URI_SCHEME.match(value))
    if tag == "a" and name == "href":  # bleach drops javascript: and other schemes; data: goes too
        return not value.strip().lower().startswith("data:")
    return True


def sanitize(html):
    """`html` with every tag and attribute that could act escaped or removed."""
    return bleach.clean(
        html,
        tags=HTML_TAGS | MATHML_TAGS,
        attributes=_allowed_attribute,
        protocols={"http", "https", "mailto", "data"},
        strip=False,
        strip_comments=True,
    )


class _MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer with the math as MathML instead of TeX for MathJax."""

    def _math(self, latex, display):
        try:
            return latex_to_mathml(latex, display=display)
        except Exception:  # noqa: BLE001 (latex2mathml raises many kinds): show the TeX instead
            return f"<code>{self.escape_html(latex)}</code>"

    def block_math(self, body):
        return self._math(body, "block")

    def inline_math(self, body):
        return self._math(body, "inline")

    def latex_environment(self, name, body):
        return self._math(f"\\begin{{{name}}}{body}\\end{{{name}}}", "block")


def render_markdown(source, attachments=None):
    """Markdown (with $math$) as sanitized HTML with MathML."""
    renderer = _MathMLRenderer(escape=False, attachments=attachments or {}, exclude_anchor_links=True)
    return sanitize(MarkdownWithMath(renderer=renderer).render(source))


@pass_context
def markdown_to_html(context, source):
    """The markdown2html filter of the course's HTMLExporters: markdown cells, comments, outputs."""
    return render_markdown(source, context.get("cell", {}).get("attachments"))


def _inert_data(data):
    """A display output's MIME bundle with only what cannot act."""
    kept = {key: value for key, value in data.items() if key in KEPT_OUTPUTS}
    if "text/markdown" in data:
        kept["text/html"] = render_markdown(data["text/markdown"])
    if "text/html" in data:
        kept["text/html"] = sanitize(data["text/html"])
    return kept


class InertOutputs(Preprocessor):
    """Sanitize every output and raw cell a student controls, and their metadata that reaches HTML."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "raw":
            cell.source = sanitize(cell.source)
        for output in cell.get("outputs", []):
            if "data" in output:
                output.data = _inert_data(output.data)
                output.metadata = {
                    key: {name: value for name, value in meta.items() if name in IMAGE_METADATA}
                    for key, meta in output.get("metadata", {}).items()
                    if key in output.data and isinstance(meta, dict)
                }
        nbgrader = cell.metadata.get("nbgrader", {})
        if "grade_id" in nbgrader:  # Formgrader writes it into attributes unescaped
            nbgrader["grade_id"] = re.sub(r"[^\w-]", "_", str(nbgrader["grade_id"]))
        return cell, resources
