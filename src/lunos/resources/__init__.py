"""API resources, built lazily on first use: `client.chat.completions`, `client.models`,
`client.logs`."""

from .chat import AsyncChat, AsyncCompletions, Chat, Completions
from .logs import AsyncLogs, Logs
from .models import AsyncModels, Models

__all__ = [
    "AsyncChat",
    "AsyncCompletions",
    "AsyncLogs",
    "AsyncModels",
    "Chat",
    "Completions",
    "Logs",
    "Models",
]
