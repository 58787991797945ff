"""A submission with script payloads everywhere a student controls what a page shows.

The reference solution of logistic_regression (so its figures are drawn), with:

- the written answer (`reflection`, graded by hand in Formgrader) holding raw HTML payloads, a
  javascript: and a data: link, a mutation-XSS attempt and a formula, around a plain sentence;
- the `accuracy` answer cell also displaying HTML, Markdown, SVG, JavaScript and raw MIME bundles;
- an added last cell raising an exception whose type name and message are HTML.

Each payload, if it ever runs, sets `window.__pwned` and writes `pwned-NAME.txt` into the Jupyter
server's root through /api/contents with the page's _xsrf cookie, as an attacker would. The tests
check the flag in the page and the files on disk.
"""

import base64

import nbformat

from course import notebooks

from conftest import reference_answers, release_notebook

ASSIGNMENT = "logistic_regression"
STUDENT = "mallory"
WRITTEN_TEXT = "My model got most test students right; I checked the confusion matrix by hand."
FORMULA = r"$$\log\frac{p}{1-p} = b + w\,z$$"
FLAG = "__pwned"
FILE_PREFIX = "pwned-"


def act(name):
    """JavaScript (no double quotes) that sets the flag and writes pwned-NAME.txt through the API."""
    return (
        f"window.{FLAG}=(window.{FLAG}||[]).concat('{name}');"
        "fetch('/api/contents/" + FILE_PREFIX + name + ".txt',{method:'PUT',credentials:'include',"
        "headers:{'Content-Type':'application/json','X-XSRFToken':"
        "((document.cookie.match(/_xsrf=([^;]+)/)||[])[1]||'')},"
        "body:JSON.stringify({type:'file',format:'text',content:'" + name + "'})}).catch(function(){})"
    )


def written_answer():
    return "\n\n".join(
        [
            WRITTEN_TEXT,
            f'<img src=x onerror="{act("md_img")}">',
            f"<script>{act('md_script')}</script>",
            f'<svg onload="{act("md_svg")}"><circle r=5></circle></svg>',
            f'<details open ontoggle="{act("md_details")}"><summary>s</summary>d</details>',
            f"<iframe srcdoc=\"<script>parent.eval(atob('{_b64(act('md_iframe'))}'))</script>\"></iframe>",
            f'<a href="javascript:{act("md_js_link")}" id="js-link">a javascript: link</a>',
            f"[a data: link](data:text/html;base64,{_b64('<script>' + act('md_data_link') + '</script>')})",
            f'<math><mtext><table><mglyph><style><img src=x onerror="{act("md_mxss")}">',
            f'<object data="data:text/html;base64,{_b64("<script>" + act("md_object") + "</script>")}"></object>',
            f"The odds: {FORMULA}",
        ]
    )


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def output_payloads():
    """Code that displays every kind of rich output with a payload, after the real answer."""
    return f'''
from IPython.display import HTML, Javascript, Markdown, SVG, display
display(HTML("<img src=x onerror=\\"{act("out_html")}\\"><b>html output</b>"))
display(Markdown("<img src=x onerror=\\"{act("out_markdown")}\\"> *markdown output*"))
display(SVG("<svg xmlns='http://www.w3.org/2000/svg' onload=\\"{act("out_svg")}\\">"
            "<script>{act("out_svg_script")}</script></svg>"))
display(Javascript("{act("out_javascript")}"))
display({{"text/html": "<script>{act("raw_html")}</script><p>raw bundle</p>",
         "application/javascript": "{act("raw_javascript")}",
         "text/markdown": "[x](javascript:{act("raw_markdown")})",
         "text/plain": "raw bundle"}}, raw=True)
display({{"text/html": "<iframe src=\\"data:text/html,x\\"></iframe>"}}, raw=True,
        metadata={{"text/html": {{"isolated": True}}}})
'''


def raising_cell():
    name = f'<img src=x onerror="{act("error_type")}">'
    message = f"<script>{act('error_message')}</script>"
    return nbformat.v4.new_code_cell(f"raise type({name!r}, (Exception,), {{}})({message!r})")


def payload_submission(root):
    """Write mallory's submission into the course at `root`; return its path."""
    answers = reference_answers(ASSIGNMENT)
    answers["reflection"] = written_answer()
    answers["accuracy"] += "\n" + output_payloads()
    notebook = notebooks.fill(release_notebook(root, ASSIGNMENT), answers)
    notebook.cells.append(raising_cell())
    return notebooks.write_submission(notebook, root, STUDENT, ASSIGNMENT)
