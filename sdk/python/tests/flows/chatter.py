"""A flow that logs numbered lines, for the log-delivery tests."""

import weir


@weir.flow
def chatter(n: int = 40) -> int:
    log = weir.get_run_logger()
    for i in range(1, n + 1):
        log.info("line %d of %d", i, n)
    return n
