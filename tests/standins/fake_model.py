"""A deterministic "model" the provider stand-ins share, so one test can ask the same thing
of every provider and know the answer.

Each stand-in turns its own wire format into a `Conversation`, asks `respond`, and turns
the `Answer` back into its wire format. Behaviour, in order:

1. the last turn carries tool results  -> text "Tool results: <name>=<content>; ..."
   (results of `web_search`: see "Web search" below)
2. the user turns since the last answer hold `[[call <tool> <json object>]]` and that tool
   is offered                           -> a call of it with exactly those arguments (one call
   per marker, in order); lets a test script a real agent's tool use whatever else the agent
   puts in its prompt. Markers naming a tool not offered are ignored.
3. tools offered, and tool_choice forces one (required/named) or the last user text
   names a tool                        -> a call of that tool, arguments built from its schema
   (a user text "call <a> and <b>" asks for two calls in one turn)
4. the last user turn has images       -> text "I see 1 image: image/png 68 bytes"
5. a response schema was given         -> JSON built from the schema
6. otherwise                           -> text "You said: <last user text>"

Web search: offered a `web_search` function and asked something with "search" or "latest"
in the last user text, the model calls `web_search({"query": <that text>})` (with a caller's
tool too when the text says "call <tool> and ..."). Given its results, it answers citing the
first two sources by number: "According to the web: <title> [1]; <title> [2]." - or, when
the results say the search failed, "The web search failed, so this answer is not based on
web results. You said: ..."; a user text with "keep searching" makes it search again while
it may; a caller's tool named in the user text is called after the search. Search results
in the system prompt (a model without tools) are answered from the same way.
`native_search` is the answer of a provider's own search, for the stand-ins that have one.

Continuing: a conversation that ends with an assistant turn holding only text (a prefill),
or with such a turn and then a user turn starting with "Your previous message was cut off"
(the gateway's continuation instruction), continues that text: when the answer to the
conversation before it starts with that text, the answer is the rest (`continued`).

Tokens are whitespace-separated words; `max_tokens` cuts the answer (finish "length"), a
stop sequence cuts it before the sequence (finish "stop").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field


@dataclass
class Image:
    mime: str
    size: int  # bytes of the decoded image, or 0 for a URL the provider would fetch
    url: str | None = None


@dataclass
class Turn:
    role: str  # "user" | "assistant"
    text: str = ""
    images: list[Image] = field(default_factory=list)
    tool_calls: list[tuple[str, dict]] = field(default_factory=list)
    tool_results: list[tuple[str, str]] = field(default_factory=list)  # (name or id, content)


@dataclass
class Conversation:
    system: str = ""
    turns: list[Turn] = field(default_factory=list)
    tools: list[dict] = field(default_factory=list)  # [{"name", "parameters"}]
    tool_choice: str | None = None  # None/"auto" | "none" | "required" | a tool name
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    response_schema: dict | None = None
    json_mode: bool = False


@dataclass
class Answer:
    text: str = ""
    tool_calls: list[tuple[str, dict]] = field(default_factory=list)
    finish: str = "stop"  # "stop" | "length" | "tool_calls" | "stop_sequence"
    stop_sequence: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def words(self) -> list[str]:
        """The text as stream pieces: each word with its leading space."""
        parts = re.findall(r"\s*\S+", self.text)
        return parts or ([self.text] if self.text else [])


def count_words(text: str) -> int:
    return len(text.split())


def value_for(schema: dict, name: str = ""):
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return value_for(schema[key][0], name)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: value_for(v, k) for k, v in props.items()}
    if kind == "array":
        item = value_for(schema.get("items", {}), name)
        return [item] if item is not None else []
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return {"location": "Paris", "city": "Paris", "query": "lunos"}.get(name, "test")


CONTINUE_ASKED = "Your previous message was cut off"


def continued(conv: Conversation) -> int | None:
    """The index of the assistant turn this conversation asks to continue, if any."""
    turns = conv.turns
    for k in (len(turns) - 1, len(turns) - 2):
        if k < 0 or turns[k].role != "assistant" or not turns[k].text or turns[k].tool_calls:
            continue
        if k == len(turns) - 1 or (turns[-1].role == "user" and turns[-1].text.startswith(CONTINUE_ASKED)):
            return k
    return None


def respond(conv: Conversation) -> Answer:
    k = continued(conv)
    if k is not None:
        said = conv.turns[k].text
        answer = respond(Conversation(**{**conv.__dict__, "turns": conv.turns[:k]}))
        if answer.text.startswith(said) and not answer.tool_calls:
            answer.text = answer.text[len(said):]
            answer.completion_tokens = count_words(answer.text) or 1
        return answer
    prompt_tokens = count_words(conv.system) + sum(
        count_words(t.text) + sum(count_words(c) for _, c in t.tool_results) + 1
        for t in conv.turns
    )
    answer = _choose(conv)
    answer.prompt_tokens = max(prompt_tokens, 1)
    if not answer.tool_calls:
        _apply_limits(answer, conv)
    answer.completion_tokens = (
        count_words(answer.text) + sum(len(json.dumps(a).split()) for _, a in answer.tool_calls)
    ) or 1
    return answer


SEARCH_TOOL = "web_search"
_SEARCH_WORDS = re.compile(r"\b(search|latest)\b", re.IGNORECASE)
_SOURCE_LINE = re.compile(r"^\[(\d+)\] (.+)$", re.MULTILINE)
_SEARCH_CONTEXT = ("UNTRUSTED WEB RESULTS", "web_search failed", "Web search results for")
NATIVE_SOURCE = ("https://news.example.com/lunos-1-0", "Lunos 1.0 released",
                 "Lunos 1.0 is out, with web search.")


def answer_from_search(results: list[str], question: str) -> str:
    """The answer to `question` from web_search results (tool results or a system prompt)."""
    text = "\n".join(results)
    sources = _SOURCE_LINE.findall(text)
    if "web_search failed" in text and not sources:
        return f"The web search failed, so this answer is not based on web results. You said: {question}"
    if not sources:
        return f"The search found nothing. You said: {question}"
    return "According to the web: " + "; ".join(f"{title} [{n}]" for n, title in sources[:2]) + "."


def native_search(conv: Conversation) -> tuple[str, str, tuple[int, int]] | None:
    """A provider's own web search, when the last user text asks for one: (query, answer
    text, (start, end) of the sentence citing `NATIVE_SOURCE`), else None."""
    last_user = _asked(conv)
    if not _SEARCH_WORDS.search(last_user.text):
        return None
    lead = f"Searched the web for: {last_user.text}. "
    text = lead + NATIVE_SOURCE[2]
    return last_user.text, text, (len(lead), len(text))


def _asked(conv: Conversation) -> Turn:
    """The last user turn that is not tool results."""
    return next((t for t in reversed(conv.turns) if t.role == "user" and not t.tool_results), Turn("user"))


def _after_search(conv: Conversation, results: list[str]) -> Answer:
    last_user = _asked(conv)
    offered = {t["name"] for t in conv.tools}
    may_call = conv.tool_choice != "none"
    if (may_call and SEARCH_TOOL in offered and "keep searching" in last_user.text
            and not any(r.startswith("web_search was not run") for r in results)):
        searches = sum(1 for t in conv.turns for n, _ in t.tool_results if n == SEARCH_TOOL)
        return Answer(tool_calls=[(SEARCH_TOOL, {"query": f"{last_user.text} (more {searches})"})],
                      finish="tool_calls")
    named = [t for t in conv.tools if t["name"] != SEARCH_TOOL
             and re.search(rf"\b{re.escape(t['name'])}\b", last_user.text)]
    if may_call and named:
        return Answer(tool_calls=[(named[0]["name"], value_for(named[0].get("parameters") or {}) or {})],
                      finish="tool_calls")
    return Answer(text=answer_from_search(results, last_user.text))


def _choose(conv: Conversation) -> Answer:
    last = conv.turns[-1] if conv.turns else Turn("user")
    searched = [c for n, c in last.tool_results if n == SEARCH_TOOL]
    if searched:
        return _after_search(conv, searched)
    if last.tool_results:
        text = "Tool results: " + "; ".join(f"{n}={c}" for n, c in last.tool_results)
        return Answer(text=text)
    scripted = _scripted_calls(conv)
    if scripted:
        return Answer(tool_calls=scripted, finish="tool_calls")
    last_user = next((t for t in reversed(conv.turns) if t.role == "user"), Turn("user"))
    calls = _tool_calls(conv, last_user.text)
    if calls:
        return Answer(tool_calls=calls, finish="tool_calls")
    if last_user.images:
        described = ", ".join(f"{i.mime} {i.size} bytes" if i.size else f"url {i.url}"
                              for i in last_user.images)
        n = len(last_user.images)
        return Answer(text=f"I see {n} image{'s' if n > 1 else ''}: {described}")
    if any(marker in conv.system for marker in _SEARCH_CONTEXT):
        return Answer(text=answer_from_search([conv.system], last_user.text))
    if conv.response_schema is not None:
        return Answer(text=json.dumps(value_for(conv.response_schema)))
    if conv.json_mode:
        return Answer(text=json.dumps({"said": last_user.text}))
    return Answer(text=f"You said: {last_user.text}")


_SCRIPTED_CALL = re.compile(r"\[\[call ([\w-]+) (\{.*?\})\]\]", re.DOTALL)


def _scripted_calls(conv: Conversation) -> list[tuple[str, dict]]:
    """The `[[call <tool> {...}]]` markers of the user turns after the last assistant turn
    (an agent may add its own user turns after the one holding the task)."""
    if not conv.tools or conv.tool_choice == "none":
        return []
    offered = {t["name"] for t in conv.tools}
    current = []
    for turn in reversed(conv.turns):
        if turn.role != "user":
            break
        current.insert(0, turn.text)
    calls = []
    for name, arguments in _SCRIPTED_CALL.findall("\n".join(current)):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            continue
        if name in offered and isinstance(parsed, dict):
            calls.append((name, parsed))
    return calls


def _tool_calls(conv: Conversation, user_text: str) -> list[tuple[str, dict]]:
    if not conv.tools or conv.tool_choice == "none":
        return []
    by_name = {t["name"]: t for t in conv.tools}
    if conv.tool_choice in (None, "auto", "required") and SEARCH_TOOL in by_name \
            and _SEARCH_WORDS.search(user_text):
        calls = [(SEARCH_TOOL, {"query": user_text})]
        if re.search(r"\bcall\b.*\band\b", user_text):
            calls += [(t["name"], value_for(t.get("parameters") or {}) or {}) for t in conv.tools
                      if t["name"] != SEARCH_TOOL and re.search(rf"\b{re.escape(t['name'])}\b", user_text)]
        return calls
    if conv.tool_choice not in (None, "auto", "required"):
        tool = by_name[conv.tool_choice]
        return [(tool["name"], value_for(tool.get("parameters") or {}) or {})]
    named = [t for t in conv.tools if re.search(rf"\b{re.escape(t['name'])}\b", user_text)]
    if not named and conv.tool_choice == "required":
        named = [conv.tools[0]]
    if not named:
        return []
    if not re.search(r"\bcall\b.*\band\b", user_text):
        named = named[:1]
    return [(t["name"], value_for(t.get("parameters") or {}) or {}) for t in named]


def _apply_limits(answer: Answer, conv: Conversation) -> None:
    for seq in conv.stop:
        cut = answer.text.find(seq)
        if seq and cut >= 0:
            answer.text = answer.text[:cut]
            answer.finish = "stop_sequence"
            answer.stop_sequence = seq
    if conv.max_tokens is not None:
        pieces = answer.words()
        if len(pieces) > conv.max_tokens:
            answer.text = "".join(pieces[: conv.max_tokens])
            answer.finish = "length"
