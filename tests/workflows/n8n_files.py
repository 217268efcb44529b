"""Hand-written n8n exports (the format as n8n writes it), for the import tests. Written
for WHOOSH's tests; no file of n8n's own (Sustainable Use License) is copied here."""

from __future__ import annotations

import json
from typing import Any

LC, BASE = "@n8n/n8n-nodes-langchain.", "n8n-nodes-base."


def node(name: str, kind: str, version: float = 1, x: int = 0, y: int = 0, **extra: Any) -> dict:
    return {"parameters": extra.pop("parameters", {}), "id": f"id-{name}", "name": name,
            "type": kind, "typeVersion": version, "position": [x, y], **extra}  # fmt: skip


def main(*targets: list[str] | None) -> dict:
    return {"main": [[{"node": t, "type": "main", "index": 0} for t in out] if out else None
                     for out in targets]}  # fmt: skip


def export(nodes: list[dict], connections: dict, **top: Any) -> str:
    return json.dumps({"name": top.pop("name", "My flow"), "nodes": nodes,
                       "connections": connections, "settings": {"executionOrder": "v1"},
                       "pinData": {}, "meta": {"instanceId": "x"}, **top})  # fmt: skip


def condition(left: str, kind: str, operation: str, right: Any = None) -> dict:
    return {"id": "c1", "leftValue": left, "rightValue": right,
            "operator": {"type": kind, "operation": operation}}  # fmt: skip


# Chat trigger -> Basic LLM Chain (defaults) <- Ollama chat model -> Set
CHAT_LLM = export(
    [
        node("When chat message received", LC + "chatTrigger", 1.1),
        node("Basic LLM Chain", LC + "chainLlm", 1.7, x=200,
             parameters={"messages": {"messageValues": [{"message": "Answer briefly."}]}}),
        node("Ollama Chat Model", LC + "lmChatOllama", 1, x=200, y=200,
             parameters={"model": "llama3.2:latest",
                         "options": {"temperature": 0.2, "numCtx": 4096, "keepAlive": "5m"}},
             credentials={"ollamaApi": {"id": "1", "name": "Local Ollama"}}),
        node("Answer", BASE + "set", 3.4, x=400, parameters={"assignments": {"assignments": [
            {"id": "a", "name": "answer", "value": "={{ $json.text.trim() }}", "type": "string"},
            {"id": "b", "name": "asked", "type": "string",
             "value": "={{ $('When chat message received').item.json.chatInput }}"},
        ]}}),
        node("Note", BASE + "stickyNote", 1, parameters={"content": "hello"}),
    ],
    {
        "When chat message received": main(["Basic LLM Chain"]),
        "Basic LLM Chain": main(["Answer"]),
        "Ollama Chat Model": {"ai_languageModel": [[{"node": "Basic LLM Chain",
                                                     "type": "ai_languageModel", "index": 0}]]},
    },
)  # fmt: skip

# Manual trigger -> command -> If (stdout contains ok) -> true: Set / false: Stop and Error;
# Set -> Merge (append, with the Wait branch) ; Switch with a fallback; a disabled node;
# retry and an error output; SSH; an unreachable node.
SHELL_FLOW = export(
    [
        node("Start", BASE + "manualTrigger"),
        node("Run", BASE + "executeCommand", 1, x=100, parameters={"command": "echo ok"},
             retryOnFail=True, maxTries=9, waitBetweenTries=200),
        node("Check", BASE + "if", 2.2, x=200, parameters={"conditions": {
            "options": {"caseSensitive": True}, "combinator": "and",
            "conditions": [condition("={{ $json.stdout }}", "string", "contains", "ok")]}}),
        node("Good", BASE + "set", 3.4, x=300, parameters={"assignments": {"assignments": [
            {"id": "a", "name": "code", "value": "={{ $('Run').item.json.exitCode }}",
             "type": "number"}]}}),
        node("Bad", BASE + "stopAndError", 1, x=300, y=100,
             parameters={"errorMessage": "=no ok in {{ $('Run').item.json.stdout }}"}),
        node("Pause", BASE + "wait", 1.1, x=300, y=-100,
             parameters={"resume": "timeInterval", "amount": 2, "unit": "seconds"}),
        node("Join", BASE + "merge", 3, x=400, parameters={"mode": "append"}),
        node("Route", BASE + "switch", 3.2, x=500, parameters={
            "rules": {"values": [{"conditions": {"combinator": "and", "conditions": [
                condition("={{ $json.code }}", "number", "equals", 0)]}}]},
            "options": {"fallbackOutput": "extra"}}),
        node("Skipped", BASE + "noOp", 1, x=600, disabled=True),
        node("Remote", BASE + "ssh", 1, x=600, y=100, onError="continueErrorOutput",
             parameters={"command": "uptime", "cwd": "/tmp"}),
        node("Remote failed", BASE + "noOp", 1, x=700, y=100),
        node("Orphan", BASE + "httpRequest", 4.2, x=900, y=900),
    ],
    {
        "Start": main(["Run"]),
        "Run": main(["Check", "Pause"]),
        "Check": main(["Good"], ["Bad"]),
        "Good": main(["Join"]),
        "Pause": {"main": [[{"node": "Join", "type": "main", "index": 1}]]},
        "Join": main(["Route"]),
        "Route": main(["Skipped"], ["Remote"]),
        "Remote": main([], ["Remote failed"]),
    },
)  # fmt: skip

# Everything here is refused, each for its own reason.
REFUSED = export(
    [
        node("Hook", BASE + "webhook", 2, parameters={"path": "x"}),
        node("Fetch", BASE + "httpRequest", 4.2, x=100, parameters={"url": "http://x"}),
        node("Code", BASE + "code", 2, x=200, parameters={"jsCode": "return []"}),
        node("Agent", LC + "agent", 1.7, x=300, parameters={"promptType": "define",
             "text": "={{ $json.body.q.split(',')[0] }}"}),
        node("Model", LC + "lmChatOpenAi", 1.2, x=300, y=200, parameters={
            "model": {"__rl": True, "value": "gpt-4o-mini", "mode": "list"}}),
        node("Memory", LC + "memoryBufferWindow", 1.3, x=400, y=200),
        node("Old if", BASE + "if", 1, x=400, parameters={"conditions": {"string": []}}),
        node("Sql merge", BASE + "merge", 3, x=500, parameters={"mode": "combineBySql"}),
        node("Again", BASE + "noOp", 1, x=600),
    ],
    {
        "Hook": main(["Fetch"]),
        "Fetch": main(["Code"]),
        "Code": main(["Agent"]),
        "Agent": main(["Old if"]),
        "Old if": main(["Sql merge"]),
        "Sql merge": main(["Again"]),
        "Again": main(["Sql merge"]),
        "Model": {"ai_languageModel": [[{"node": "Agent", "type": "ai_languageModel",
                                         "index": 0}]]},
        "Memory": {"ai_memory": [[{"node": "Agent", "type": "ai_memory", "index": 0}]]},
    },
)  # fmt: skip
