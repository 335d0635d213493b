"""The HTML report read back with the standard library's parser: what a browser would show."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class ParsedRow:
    attributes: dict[str, str]
    cells: list[str] = field(default_factory=list)  # each cell's text, entities decoded


class ReportParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[ParsedRow] = []  # rows of the examples table
        self.filters: list[str] = []
        self.headline = ""
        self.external: list[str] = []  # src/href attributes: a self-contained page has none
        self.tags: list[str] = []
        self._in_examples = self._in_cell = self._in_headline = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        self.tags.append(tag)
        self.external += [attributes[key] for key in ("src", "href") if key in attributes]
        if tag == "table":
            self._in_examples = attributes.get("id") == "examples"
        elif tag == "tr" and self._in_examples and "data-verdict" in attributes:
            self.rows.append(ParsedRow(attributes))
        elif tag == "td" and self._in_examples and self.rows:
            self.rows[-1].cells.append("")
            self._in_cell = True
        elif tag == "button" and "data-filter" in attributes:
            self.filters.append(attributes["data-filter"])
        elif attributes.get("id") == "headline":
            self._in_headline = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_cell = False
        elif tag == "table":
            self._in_examples = False
        elif tag == "div":
            self._in_headline = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.rows[-1].cells[-1] += data
        if self._in_headline:
            self.headline += data


def parse_report(html: str) -> ReportParser:
    parser = ReportParser()
    parser.feed(html)
    parser.close()
    return parser
