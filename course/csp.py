"""The Content-Security-Policy of the pages the course writes to files: feedback and grade reports.

They run no script and load nothing from outside (images: embedded, or the report's figures beside it).
"""

CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; font-src data:; "
    "base-uri 'none'; form-action 'none'"
)


def csp_meta():
    """The <meta> that puts CSP on a page opened from a file; it must come first in <head>."""
    return f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
