"""A small HTML reader for the report tests: what the checks need, nothing rendered."""

from __future__ import annotations

from html.parser import HTMLParser


class Page(HTMLParser):
    """Collects what the checks need: tag attributes, script bodies, headline, ids, text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attrs: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self.ids: list[str] = []
        self.h1 = ""
        self.text: list[str] = []
        self._in: str | None = None
        self._script_attrs: dict[str, str | None] = {}
        self._buf: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        d = dict(attrs)
        self.attrs.append((tag, d))
        if d.get("id"):
            self.ids.append(str(d["id"]))
        if tag in ("script", "style", "h1"):
            self._in, self._script_attrs, self._buf = tag, d, []

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            body = "".join(self._buf)
            if tag == "script":
                self.scripts.append((self._script_attrs, body))
            elif tag == "style":
                self.styles.append(body)
            else:
                self.h1 = body
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self._buf.append(data)
        if self._in not in ("script", "style"):
            self.text.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page
