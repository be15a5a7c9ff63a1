"""Sphinx settings for the book (`make book`); book/build_book.py passes this folder as ``-c``.

The source folder is the staging copy build_book.py writes (notebooks as readers see them, plus the
start page and the solutions page). Nothing here may make a page fetch anything from the network.
"""

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent

project = "PyTorch Workflow"
author = "the PyTorch Workflow contributors"
copyright = "the PyTorch Workflow contributors"
language = "en"

extensions = ["myst_nb"]
# The stored outputs are the book: strict nbval already proves they are what the code prints.
nb_execution_mode = "off"
# no widget outputs are left (static_view turns them into pictures), so no widget JavaScript from a CDN
nb_ipywidgets_js = {}
# one block per cell for what it printed, as JupyterLab shows it (the kernel may flush a print in parts)
nb_merge_streams = True
# notebooks only; the start page and the solutions page are staged as notebooks/markdown too
source_suffix = {".ipynb": "myst-nb", ".md": "myst-nb"}
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
# Headings inside the stream of notebook cells start at h2 after the title; any level jump is ours to fix.
suppress_warnings: list[str] = []

html_theme = "sphinx_book_theme"
html_title = "PyTorch Workflow"
html_static_path = [str(HERE / "_static")]
html_css_files = ["book.css"]
html_copy_source = False
# The notebooks define no index entries, so a general index would be an empty page.
html_use_index = False
html_show_sourcelink = False
html_show_sphinx = False
html_last_updated_fmt = None
html_theme_options = {
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "use_issues_button": False,
    "use_edit_page_button": False,
    "use_source_button": False,
    "launch_buttons": {},
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
    "pygments_light_style": "a11y-high-contrast-light",
    "pygments_dark_style": "a11y-high-contrast-dark",
}
pygments_style = "a11y-high-contrast-light"
# the theme otherwise starts with an empty mode and logs a console error before falling back to "auto";
# light is the mode whose contrast the tests check with axe
html_context = {"default_mode": "light"}
templates_path = [str(HERE / "_templates")]

# The theme's sidebar folds a page's sub-pages (the solutions) under a <summary> holding only a
# chevron icon, which has no name for a screen reader (axe: summary-name). Name it after the build.
SUMMARY = '<summary><span class="toctree-toggle" role="presentation">'
NAMED_SUMMARY = (
    '<summary aria-label="Show or hide the pages in this section"><span class="toctree-toggle" role="presentation">'
)


# A figure is shown at the column's width; a click opens it full size, where a wide one's small text is legible.
FIGURE = re.compile(r'<img (?!data-full-size)([^>]*?src="([^"]*_images/[^"]+)"[^>]*)>')


HINT = '<span class="visually-hidden"> (opens the full-size image)</span>'


def full_size_links(text: str) -> str:
    """Each figure in a link to itself; ``data-full-size`` marks it done (Sphinx keeps unchanged pages). The
    link's name is the figure's alt text and, for a screen reader, what the link does."""
    return FIGURE.sub(
        lambda m: f'<a class="full-size-figure" href="{m[2]}"><img data-full-size {m[1]}>{HINT}</a>', text
    )


def after_build(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    website = app.builder.name == "html"  # the one-page build is printed: a link to a file there would be dead
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        changed = text.replace(SUMMARY, NAMED_SUMMARY)
        changed = full_size_links(changed) if website else changed
        if changed != text:
            page.write_text(changed, encoding="utf-8")


def setup(app):
    app.connect("build-finished", after_build)
