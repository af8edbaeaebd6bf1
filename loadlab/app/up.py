"""``loadlab up``: the embedded stack in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio

from loadlab.app.options import UpOptions
from loadlab.embedded.stack import EmbeddedStack, serve_forever


def execute(options: UpOptions) -> int:
    """Serve the stack until a signal; 0, or raise StackError (exit 4) when a part dies."""
    stack = EmbeddedStack(
        replicas=options.stack.replicas,
        time_scale=options.stack.time_scale,
        state_dir=options.stack.state_dir,
        lambda_function=options.stack.lambda_function,
    )
    asyncio.run(serve_forever(stack))
    return 0
