"""Keep each inline script once per page (a work-around for Sphinx 7.4).

An inline script that an extension adds after the HTML builder has started
(sphinx-thebe's configuration, sphinx-togglebutton's selector) is stored with
the file name None, and stored again with the name '' when the pages are
written; the two do not compare equal, so every page carried it twice, and the
second ``const THEBE_JS_URL`` is a SyntaxError in the browser. This drops the
early copies just before the pages are written; the later ones remain.
"""


def drop_early_inline_copies(app, env):
    scripts = getattr(app.builder, "_js_files", None)
    if scripts is not None:
        scripts[:] = [script for script in scripts if script.filename is not None]


def setup(app):
    app.connect("env-updated", drop_early_inline_copies)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
