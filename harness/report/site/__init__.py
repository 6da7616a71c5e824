"""The viewer (``harness view``): a static, self-contained site of dossiers, runs, diffs and claims.

:mod:`.build` verifies and writes the site (and serves it on loopback), :mod:`.model`
reads a dossier and its verification state, :mod:`.pages` renders the package and run
pages, :mod:`.samples` the per-sample browser and the diff page, :mod:`.html` the page
shell (CSS, the one script, escaping). Plots come from :mod:`harness.report.svg`.
docs/viewer.md describes the site.
"""

from harness.report.site.build import SiteResult, ViewOptions, build_site, start_server

__all__ = ["SiteResult", "ViewOptions", "build_site", "start_server"]
