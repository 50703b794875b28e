"""zsaga for Python: a client that submits and follows sagas, and a
worker library that runs a system's operations exactly once behind the
barrier, with the same tables and rules as the C runtime.

    from zsaga import Client, Worker, Fail, RetryLater

docs/submit-from-your-service.md and docs/write-a-worker.md show both.
"""
from .client import Client
from .errors import (Fail, InvalidParams, NoAnswer, Rejected, RequestError, RetryLater, Timeout,
                     ZsagaError)
from .worker import Migration, StepContext, Worker

__version__ = "0.1.0"
__all__ = ["Client", "Worker", "Migration", "StepContext", "Fail", "RetryLater", "ZsagaError",
           "Rejected", "RequestError", "InvalidParams", "NoAnswer", "Timeout"]
