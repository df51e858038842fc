"""An example flow: extract, transform each item in parallel, load.

Run it locally, with no server:

    python3 -m weir flows run hello --param items=5
"""

from typing import List

import weir


@weir.task(retries=2, retry_delay=1)
def extract(items: int) -> List[int]:
    """Fetches the items (here: the numbers 1..items)."""
    weir.get_run_logger().info("extracting %d items", items)
    return list(range(1, items + 1))


@weir.task
def transform(x: int) -> int:
    """Squares one item."""
    return x * x


@weir.task(persist_result=True)
def load(values: List[int]) -> int:
    """Loads the values (here: sums them)."""
    return sum(values)


@weir.flow
def hello(items: int = 10) -> int:
    """Squares 1..items in parallel and sums them."""
    return load(transform.map(extract(items)))
