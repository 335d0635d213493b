"""Tables that stay readable in a narrow terminal.

Ids and model names are kept whole (they are copied), so a wide table cannot shrink evenly: rich gives
way on the other columns until Status or Step show nothing. When the table's natural width exceeds the
terminal, each row is printed as a block of `Header  value` lines instead, every value whole.
"""

from __future__ import annotations

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

UNBOUNDED_WIDTH = 10_000


def print_table(console: Console, table: Table) -> None:
    unbounded = console.options.update_width(UNBOUNDED_WIDTH)  # else the measure stops at the terminal's
    if Measurement.get(console, unbounded, table).maximum <= console.width:
        console.print(table)
        return
    if table.title:
        console.print(table.title, style="bold")
    headers = [str(column.header) for column in table.columns]
    for row in zip(*(list(column.cells) for column in table.columns), strict=True):
        block = Table.grid(padding=(0, 2))
        block.add_column(style="dim", no_wrap=True)
        block.add_column(overflow="fold")
        for header, cell in zip(headers, row, strict=True):
            block.add_row(header, cell)
        console.print()
        console.print(block)
