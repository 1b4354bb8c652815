"""API resources, built lazily on first use: `client.chat.completions`, `client.models`,
`client.logs`, `client.responses`."""

from .chat import AsyncChat, AsyncCompletions, Chat, Completions
from .logs import AsyncLogs, Logs
from .models import AsyncModels, Models
from .responses import AsyncInputItems, AsyncResponses, InputItems, Responses

__all__ = [
    "AsyncChat",
    "AsyncCompletions",
    "AsyncInputItems",
    "AsyncLogs",
    "AsyncModels",
    "AsyncResponses",
    "Chat",
    "Completions",
    "InputItems",
    "Logs",
    "Models",
    "Responses",
]
