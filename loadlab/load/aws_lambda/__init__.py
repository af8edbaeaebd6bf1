"""Turns played through the Lambda Invoke API: the transport, Lambda's log lines, the user.

The same seeded sessions as over HTTP, for an agent deployed as a Lambda
function; chosen when the run names a function (``--lambda-function``, or a
scenario with ``target.protocol: lambda``; see
:func:`loadlab.load.context.lambda_function_of`).
"""
