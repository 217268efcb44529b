"""Import of n8n workflow exports into the native model (`whoosh: workflow/v1`).

Only an agent-fleet-shaped core translates: manual, chat and webhook triggers; Set, If,
Switch, Filter, Merge, NoOp, Wait, Stop and Error; Basic LLM Chain and AI Agent fed by an
Ollama or OpenAI chat model (no tools, memory or output parsers); Execute Command and SSH
as shell steps; and the simple expressions (`{{ $json.x }}`, `$('Node').item.json.y`,
`$node["Node"].json.z`, with trim/toLowerCase/toUpperCase/toJsonString). Everything else
is refused, every problem listed (node, type, version, why), and nothing is stored. No
n8n expression is ever evaluated: they are translated into the template language or
refused. Pure.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

from whoosh_coordinator.workflows.definition import DefinitionError

BASE, LANGCHAIN = "n8n-nodes-base.", "@n8n/n8n-nodes-langchain."
TRIGGERS = {
    BASE + "manualTrigger": "manual",
    LANGCHAIN + "chatTrigger": "chat",
    LANGCHAIN + "manualChatTrigger": "chat-legacy",
    BASE + "webhook": "webhook",
}
LLM_ROOTS = {LANGCHAIN + "chainLlm", LANGCHAIN + "agent"}
MODELS = {LANGCHAIN + "lmChatOllama", LANGCHAIN + "lmOllama", LANGCHAIN + "lmChatOpenAi"}
PASSTHROUGH = {BASE + "if", BASE + "switch", BASE + "filter", BASE + "noOp", BASE + "wait"}
IGNORED = {BASE + "stickyNote"}
OLLAMA_OPTIONS = {
    "temperature": "temperature", "topK": "top_k", "topP": "top_p", "numCtx": "num_ctx",
    "numPredict": "num_predict", "repeatPenalty": "repeat_penalty", "numBatch": "num_batch",
    "frequencyPenalty": "frequency_penalty", "presencePenalty": "presence_penalty",
    "numGpu": "num_gpu", "numThread": "num_thread", "mainGpu": "main_gpu",
    "lowVram": "low_vram", "useMLock": "use_mlock", "useMMap": "use_mmap",
    "penalizeNewline": "penalize_newline", "vocabOnly": "vocab_only", "maxTokens": "num_predict",
    "seed": "seed",
}  # fmt: skip
DROPPED_OPTIONS = {"keepAlive", "timeout", "maxRetries", "baseURL"}
OPERATORS = {
    ("string", "equals"): "equals", ("string", "notEquals"): "not_equals",
    ("string", "contains"): "contains", ("string", "notContains"): "not_contains",
    ("string", "startsWith"): "starts_with", ("string", "endsWith"): "ends_with",
    ("string", "empty"): "is_empty", ("string", "notEmpty"): "is_not_empty",
    ("number", "equals"): "equals", ("number", "notEquals"): "not_equals",
    ("number", "gt"): "gt", ("number", "gte"): "gte", ("number", "lt"): "lt",
    ("number", "lte"): "lte", ("boolean", "true"): "is_true", ("boolean", "false"): "is_false",
    ("boolean", "equals"): "equals", ("boolean", "notEquals"): "not_equals",
    ("array", "contains"): "contains", ("array", "notContains"): "not_contains",
    ("array", "empty"): "is_empty", ("array", "notEmpty"): "is_not_empty",
    ("object", "empty"): "is_empty", ("object", "notEmpty"): "is_not_empty",
}  # fmt: skip
UNITS = {"seconds": "s", "minutes": "m", "hours": "h", "days": "d"}
METHODS = {
    "trim()": "trim", "toLowerCase()": "lower", "toUpperCase()": "upper",
    "toJsonString()": "json", "toString()": "",
}  # fmt: skip
NODE_REF = r"""(?:\$\(\s*(?P<q>['"])(?P<n1>.+?)(?P=q)\s*\)\.(?:item|first\(\)|last\(\))"""
NODE_REF += r"""|\$node\[\s*(?P<q2>['"])(?P<n2>.+?)(?P=q2)\s*\])"""
SIMPLE = re.compile(
    rf"""^\s*(?:(?P<json>\$json)|(?:\$input\.(?:item|first\(\)|last\(\)))\.json|{NODE_REF}\.json)"""
    r"""(?P<path>(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\s*(?:\d+|'[^']*'|"[^"]*")\s*\])*)"""
    r"""(?P<methods>(?:\.(?:trim|toLowerCase|toUpperCase|toJsonString|toString)\(\))*)\s*$"""
)


class Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[tuple[str, str]] = []

    def add(self, node: dict[str, Any] | None, why: str) -> None:
        if node is None:
            self.items.append(("", f"{self.source}: {why}"))
            return
        name = str(node.get("name", "?"))
        kind = f"{node.get('type', '?')} v{node.get('typeVersion', '?')}"
        self.items.append((name, f"{self.source}: node '{name}' ({kind}): {why}"))

    def raise_if_any(self) -> None:
        if self.items:
            raise DefinitionError([text for _, text in sorted(self.items)])


def looks_like_n8n(text: str) -> bool:
    if not text.lstrip().startswith("{"):
        return False
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and ("nodes" in data or "connections" in data)


def translate(text: str, source: str, name: str | None) -> dict[str, Any]:
    """The native definition (a dict for `load_data`) of an n8n export, or DefinitionError
    listing every problem."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DefinitionError([f"{source}: not an n8n export: not JSON ({exc})"]) from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise DefinitionError([f"{source}: not an n8n export: no 'nodes' list"])
    if not isinstance(data.get("connections", {}), dict):
        raise DefinitionError([f"{source}: not an n8n export: 'connections' is not an object"])
    return _Translator(data, source, name).run()


def slug(name: str) -> str:
    text = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "step"
    return text if text[0].isalpha() else f"s-{text}"


class _Translator:
    def __init__(self, data: dict[str, Any], source: str, name: str | None) -> None:
        self.data, self.source = data, source
        self.name = name or slug(str(data.get("name") or "n8n-workflow"))[:100]
        self.problems = Problems(source)
        self.nodes: dict[str, dict[str, Any]] = {}
        for node in data["nodes"]:
            if not isinstance(node, dict) or not isinstance(node.get("name"), str):
                self.problems.add(None, f"a node without a name: {str(node)[:80]}")
                continue
            self.nodes[node["name"]] = node
        self.ids: dict[str, str] = {}
        self.main_in: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
        self.models: dict[str, list[str]] = defaultdict(list)  # root -> model sub-nodes
        self.inputs: dict[str, Any] = {}

    # -- the graph ----------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self._connections()
        reachable = self._reachable()
        steps: dict[str, Any] = {}
        for node_name in sorted(reachable, key=self._order):
            node = self.nodes[node_name]
            if self._type(node) in TRIGGERS:
                self._trigger(node)
                continue
            step = self._step(node)
            if step is not None:
                steps[self.ids[node_name]] = step
        for node_name, node in self.nodes.items():
            if self._type(node) in MODELS and not any(
                node_name in subs for subs in self.models.values()
            ):
                continue  # a model feeding nothing: nothing to run
        self.problems.raise_if_any()
        if not steps:
            raise DefinitionError(
                [f"{self.source}: nothing to run (no supported node after a trigger)"]
            )
        return {
            "whoosh": "workflow/v1",
            "name": self.name,
            "description": f"imported from n8n: {self.data.get('name') or self.source}",
            "inputs": self.inputs,
            "settings": {"max_parallel": 4},
            "steps": steps,
        }

    def _type(self, node: dict[str, Any]) -> str:
        return str(node.get("type", ""))

    def _order(self, node_name: str) -> tuple[float, float]:
        pos = self.nodes[node_name].get("position") or [0, 0]
        return (float(pos[1]), float(pos[0])) if len(pos) == 2 else (0.0, 0.0)

    def _connections(self) -> None:
        taken: set[str] = set()
        for node_name in self.nodes:
            step_id = slug(node_name)[:60]
            while step_id in taken:
                step_id = f"{step_id}-{len(taken)}"
            taken.add(step_id)
            self.ids[node_name] = step_id
        for src, kinds in (self.data.get("connections") or {}).items():
            if src not in self.nodes:
                self.problems.add(None, f"connections name a node '{src}' that does not exist")
                continue
            if not isinstance(kinds, dict):
                continue
            for kind, outputs in kinds.items():
                for index, targets in enumerate(outputs or []):
                    for target in targets or []:
                        dest = target.get("node") if isinstance(target, dict) else None
                        if dest not in self.nodes:
                            self.problems.add(self.nodes[src], f"connects to unknown node {dest!r}")
                            continue
                        if kind == "main":
                            self.main_in[dest].append((src, index, int(target.get("index", 0))))
                        elif kind == "ai_languageModel":
                            self.models[dest].append(src)
                        else:
                            self.problems.add(
                                self.nodes[src],
                                f"'{kind}' sub-nodes are not supported (no tools, memory, "
                                "output parsers, retrievers or embeddings)",
                            )

    def _reachable(self) -> set[str]:
        starts = [n for n, node in self.nodes.items() if self._type(node) in TRIGGERS]
        if not starts:
            starts = [
                n for n, node in self.nodes.items()
                if not self.main_in.get(n) and self._type(node) not in MODELS | IGNORED
            ]  # fmt: skip
        out: dict[str, list[str]] = defaultdict(list)
        for dest, edges in self.main_in.items():
            for src, _, _ in edges:
                out[src].append(dest)
        seen: set[str] = set()
        todo = list(starts)
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(out[current])
        self._cycle(out, seen)
        return seen

    def _cycle(self, out: dict[str, list[str]], nodes: set[str]) -> None:
        state: dict[str, int] = {}

        def visit(n: str, path: list[str]) -> list[str] | None:
            state[n] = 1
            for m in out[n]:
                if state.get(m) == 1:
                    return [*path[path.index(m) :], m] if m in path else [n, m]
                if m not in state and (found := visit(m, [*path, m])):
                    return found
            state[n] = 2
            return None

        for n in sorted(nodes):
            if n not in state and (found := visit(n, [n])):
                self.problems.add(
                    self.nodes[found[0]],
                    f"is part of a loop ({' -> '.join(found)}); loops are not supported",
                )
                return

    # -- nodes --------------------------------------------------------------------------

    def _trigger(self, node: dict[str, Any]) -> None:
        kind = TRIGGERS[self._type(node)]
        if kind == "chat":
            self.inputs["chatInput"] = {"type": "string", "default": ""}
            self.inputs["sessionId"] = {"type": "string", "default": ""}
        elif kind == "chat-legacy":
            self.inputs["input"] = {"type": "string", "default": ""}
        elif kind == "webhook":
            for part in ("body", "query", "headers", "params"):
                self.inputs[part] = {"type": "object", "default": {}}

    def _step(self, node: dict[str, Any]) -> dict[str, Any] | None:
        kind = self._type(node)
        params = node.get("parameters") or {}
        if kind in IGNORED or kind in MODELS:
            return None
        if node.get("disabled"):
            step: dict[str, Any] | None = {"type": "noop"}
        else:
            step = self._translate_node(node, kind, params)
        if step is None:
            return None
        step.update(self._needs(node, step))
        step.update(self._settings(node))
        if node.get("notes"):
            step["description"] = str(node["notes"])[:500]
        return step

    def _translate_node(
        self, node: dict[str, Any], kind: str, params: dict[str, Any]
    ) -> dict[str, Any] | None:
        version = float(node.get("typeVersion") or 1)
        if kind == BASE + "noOp":
            return {"type": "noop"}
        if kind == BASE + "stopAndError":
            return {"type": "fail", "message": self._text(node, params.get("errorMessage") or
                                                          "stopped by Stop and Error")}  # fmt: skip
        if kind == BASE + "set":
            return self._set(node, params, version)
        if kind == BASE + "if":
            return self._if(node, params, version)
        if kind == BASE + "filter":
            found = self._if(node, params, version)
            return found
        if kind == BASE + "switch":
            return self._switch(node, params, version)
        if kind == BASE + "merge":
            return self._merge(node, params, version)
        if kind == BASE + "wait":
            return self._wait(node, params)
        if kind in LLM_ROOTS:
            return self._llm(node, kind, params, version)
        if kind == BASE + "executeCommand":
            return {"type": "shell", "command": self._text(node, params.get("command", ""))}
        if kind == BASE + "ssh":
            if (
                params.get("resource", "command") != "command"
                or params.get("operation", "execute") != "execute"
            ):
                self.problems.add(node, "only the 'execute a command' operation is supported")
                return None
            command = self._text(node, params.get("command", ""))
            cwd = self._text(node, params.get("cwd", "/"))
            # n8n's SSH node does not fail on a non-zero exit code: continue does the same
            return {"type": "shell", "command": f"cd {cwd} && {command}", "on_error": "continue"}
        self.problems.add(node, "this node type is not supported")
        return None

    def _set(self, node: dict[str, Any], params: dict[str, Any], version: float) -> dict | None:
        fields: dict[str, Any] = {}
        if params.get("mode") == "raw":
            self.problems.add(node, "Set in 'raw' (JSON) mode is not supported")
            return None
        if version >= 3.3:
            for item in (params.get("assignments") or {}).get("assignments", []):
                fields[item.get("name", "")] = self._value(node, item.get("value"))
        elif version >= 3:
            for item in (params.get("fields") or {}).get("values", []):
                value = next((v for k, v in item.items() if k.endswith("Value")), "")
                fields[item.get("name", "")] = self._value(node, value)
        else:
            for group in (params.get("values") or {}).values():
                for item in group:
                    fields[item.get("name", "")] = self._value(node, item.get("value"))
        fields = {k: v for k, v in fields.items() if k}
        if not fields:
            self.problems.add(node, "a Set node without fields")
            return None
        include = params.get("includeOtherFields") or params.get("include") == "all"
        return {"type": "set", "fields": fields, "include_input": bool(include)}

    def _conditions(self, node: dict[str, Any], block: Any) -> tuple[list[dict], str] | None:
        if not isinstance(block, dict) or "conditions" not in block:
            self.problems.add(node, "only the v2 condition shape (If/Filter v2+) is supported")
            return None
        out = []
        for cond in block.get("conditions") or []:
            operator = cond.get("operator") or {}
            key = (operator.get("type"), operator.get("operation"))
            mapped = OPERATORS.get(key)
            if mapped is None:
                self.problems.add(node, f"condition operator {key[0]}.{key[1]} is not supported")
                return None
            out.append({
                "left": self._value(node, cond.get("leftValue")),
                "operator": mapped,
                "right": self._value(node, cond.get("rightValue")),
            })  # fmt: skip
        return out, "or" if block.get("combinator") == "or" else "and"

    def _if(self, node: dict[str, Any], params: dict[str, Any], version: float) -> dict | None:
        if version < 2:
            self.problems.add(node, "If/Filter v1 conditions are not supported (use v2 or later)")
            return None
        found = self._conditions(node, params.get("conditions"))
        if found is None:
            return None
        return {"type": "if", "conditions": found[0], "combine": found[1]}

    def _switch(self, node: dict[str, Any], params: dict[str, Any], version: float) -> dict | None:
        if version < 3 or params.get("mode", "rules") != "rules":
            self.problems.add(node, "only Switch v3 in 'rules' mode is supported")
            return None
        options = params.get("options") or {}
        if options.get("allMatchingOutputs"):
            self.problems.add(node, "'send data to all matching outputs' is not supported")
            return None
        rules = []
        for i, rule in enumerate((params.get("rules") or {}).get("values", [])):
            found = self._conditions(node, rule.get("conditions"))
            if found is None:
                return None
            rules.append({"key": f"out{i}", "conditions": found[0], "combine": found[1]})
        if not rules:
            self.problems.add(node, "a Switch without rules")
            return None
        fallback = options.get("fallbackOutput", "none")
        step: dict[str, Any] = {"type": "switch", "rules": rules}
        if fallback in ("extra", "last"):
            step["fallback"] = "fallback"
        elif isinstance(fallback, int) and 0 <= fallback < len(rules):
            step["fallback"] = f"out{fallback}"
        return step

    def _merge(self, node: dict[str, Any], params: dict[str, Any], version: float) -> dict | None:
        mode = params.get("mode", "append")
        by = params.get("combineBy") or params.get("combinationMode")
        if mode == "append":
            return {"type": "merge", "mode": "append"}
        if mode in ("combine", "mergeByIndex") and (
            by in ("combineByPosition", "mergeByPosition") or mode == "mergeByIndex"
        ):
            return {"type": "merge", "mode": "by_position"}
        if mode == "chooseBranch":
            if params.get("output", "specifiedInput") != "specifiedInput":
                return {"type": "noop", "trigger_rule": "all_success"}
            wanted = int(params.get("useDataOfInput", 1)) - 1
            for src, _, dest_index in self.main_in.get(node["name"], []):
                if dest_index == wanted:
                    return {"type": "merge", "mode": "choose", "branch": self.ids[src]}
            self.problems.add(
                node, f"chooseBranch takes input {wanted + 1}, which is not connected"
            )
            return None
        self.problems.add(node, f"Merge mode '{mode}' ({by or '-'}) is not supported")
        return None

    def _wait(self, node: dict[str, Any], params: dict[str, Any]) -> dict | None:
        resume = params.get("resume", "timeInterval")
        if resume == "timeInterval":
            amount = params.get("amount", params.get("resumeAmount", 1))
            unit = UNITS.get(params.get("unit", params.get("resumeUnit", "hours")))
            if unit is None or not isinstance(amount, int | float):
                self.problems.add(node, "the wait interval is not a number of seconds..days")
                return None
            return {"type": "wait", "duration": f"{amount}{unit}"}
        if resume == "specificTime":
            return {"type": "wait", "until": self._text(node, params.get("dateTime", ""))}
        self.problems.add(node, f"Wait resuming on '{resume}' is not supported (only time)")
        return None

    def _llm(
        self, node: dict[str, Any], kind: str, params: dict[str, Any], version: float
    ) -> dict | None:
        models = self.models.get(node["name"], [])
        if len(models) != 1:
            self.problems.add(node, "needs exactly one Ollama or OpenAI chat model sub-node")
            return None
        if params.get("hasOutputParser"):
            self.problems.add(node, "output parsers are not supported")
            return None
        model_node = self.nodes[models[0]]
        if self._type(model_node) not in MODELS:
            self.problems.add(model_node, "only Ollama and OpenAI chat models are supported")
            return None
        step: dict[str, Any] = {"type": "llm", **self._model(model_node)}
        if params.get("promptType") == "define" or ("text" in params and kind.endswith("agent")):
            prompt = params.get("text", "")
        elif "prompt" in params and version < 1.4:
            prompt = params["prompt"]
        elif self._type(self._first_trigger_kind()) == LANGCHAIN + "manualChatTrigger":
            prompt = "={{ $json.input }}"
        else:
            prompt = "={{ $json.chatInput }}"
        step["prompt"] = self._text(node, prompt)
        system = None
        if kind.endswith("agent"):
            system = (params.get("options") or {}).get("systemMessage")
        else:
            for message in (params.get("messages") or {}).get("messageValues", []):
                if message.get("type", "SystemMessagePromptTemplate") == (
                    "SystemMessagePromptTemplate"
                ):
                    system = message.get("message")
                else:
                    self.problems.add(node, "only a system message is supported in 'messages'")
        if system:
            step["system"] = self._text(node, system)
        return step

    def _first_trigger_kind(self) -> dict[str, Any]:
        for node in self.nodes.values():
            if self._type(node) in TRIGGERS:
                return node
        return {}

    def _model(self, node: dict[str, Any]) -> dict[str, Any]:
        params = node.get("parameters") or {}
        model = params.get("model", "llama3.2" if "Ollama" in self._type(node) else "gpt-4o-mini")
        if isinstance(model, dict):  # a resource locator {__rl, value, mode}
            model = model.get("value", "")
        if isinstance(model, str) and model.startswith("="):
            model = model[1:]
        out: dict[str, Any] = {"model": str(model)}
        options: dict[str, Any] = {}
        for key, value in (params.get("options") or {}).items():
            if key in OLLAMA_OPTIONS:
                options[OLLAMA_OPTIONS[key]] = value
            elif key in ("format", "responseFormat"):
                if value in ("json", "json_object"):
                    out["format"] = "json"
            elif key not in DROPPED_OPTIONS:
                self.problems.add(node, f"model option '{key}' is not supported")
        if options:
            out["options"] = options
        return out

    def _needs(self, node: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        edges = sorted(self.main_in.get(node["name"], []), key=lambda e: e[2])
        needs: dict[str, str] = {}
        for src, out_index, _ in edges:
            source = self.nodes[src]
            if self._type(source) in TRIGGERS:
                continue
            port = self._port(source, out_index)
            if port is None:
                continue
            sid = self.ids[src]
            if sid in needs and needs[sid] != port:
                self.problems.add(node, f"takes two outputs of '{src}'; that is not supported")
            needs[sid] = port
        out: dict[str, Any] = {"needs": needs} if needs else {}
        if len(needs) > 1 and step["type"] != "merge" and "trigger_rule" not in step:
            out["trigger_rule"] = "one_success"  # n8n runs such a node for whichever arrives
        return out

    def _port(self, source: dict[str, Any], index: int) -> str | None:
        kind = self._type(source)
        routes = source.get("onError") == "continueErrorOutput"
        params = source.get("parameters") or {}
        if kind in (BASE + "if", BASE + "filter"):
            names = ["true", "false"] if kind.endswith("if") else ["true"]
        elif kind == BASE + "switch":
            count = len((params.get("rules") or {}).get("values", []))
            names = [f"out{i}" for i in range(count)]
            if (params.get("options") or {}).get("fallbackOutput") in ("extra", "last"):
                names.append("fallback")
        else:
            names = ["success"]
        if routes:
            names.append("error")
        if source.get("disabled"):
            return "success" if index == 0 else None
        return names[index] if index < len(names) else None

    def _settings(self, node: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        on_error = node.get("onError")
        if on_error == "continueErrorOutput":
            out["on_error"] = "route"
        elif on_error == "continueRegularOutput" or node.get("continueOnFail"):
            out["on_error"] = "continue"
        if node.get("retryOnFail"):
            tries = min(5, max(2, int(node.get("maxTries") or 3)))
            wait_ms = min(5000, max(0, int(node.get("waitBetweenTries") or 1000)))
            out["retry"] = {"max_attempts": tries, "backoff": wait_ms / 1000}
        return out

    # -- values and expressions ---------------------------------------------------------

    def _value(self, node: dict[str, Any], value: Any) -> Any:
        if isinstance(value, str):
            return self._text(node, value)
        return value

    def _text(self, node: dict[str, Any], value: Any) -> str:
        if not isinstance(value, str):
            return str(value)
        if not value.startswith("="):
            if "{{" in value or "}}" in value:
                self.problems.add(node, f"literal text with '{{{{' or '}}}}': {value[:60]!r}")
            return value
        body = value[1:]
        out, i = [], 0
        for match in re.finditer(r"\{\{(.*?)\}\}", body, re.DOTALL):
            out.append(body[i : match.start()])
            out.append(self._expression(node, match.group(1)))
            i = match.end()
        out.append(body[i:])
        return "".join(out)

    def _expression(self, node: dict[str, Any], text: str) -> str:
        match = SIMPLE.match(text)
        if match is None:
            self.problems.add(
                node,
                f"expression '{{{{{text}}}}}' is not supported (only $json.x, "
                "$('Node').item.json.x, $node[\"Node\"].json.x)",
            )
            return "{{ '' }}"
        source_name = match.group("n1") or match.group("n2")
        if source_name is None:
            inputs = self.main_in.get(node["name"], [])
            source_name = inputs[0][0] if inputs else None
        path = re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*(\d+|'[^']*'|\"[^\"]*\")\s*\]",
                          match.group("path"))  # fmt: skip
        parts = [a or b.strip("'\"") for a, b in path]
        filters = [METHODS[m + "()"] for m in re.findall(r"\.(\w+)\(\)", match.group("methods"))]
        ref = self._reference(node, source_name, parts)
        if ref is None:
            return "{{ '' }}"
        chain = "".join(f" | {f}" for f in filters if f)
        return f"{{{{ {ref}{chain} }}}}"

    def _reference(self, node: dict[str, Any], source: str | None, parts: list[str]) -> str | None:
        if source is None or source not in self.nodes:
            self.problems.add(node, f"an expression names no node it can read ({source!r})")
            return None
        source = self._producer(source)
        kind = self._type(self.nodes[source])
        dotted = "".join(f".{p}" if not p.isdigit() else f"[{p}]" for p in parts)
        if kind in TRIGGERS:
            trigger = TRIGGERS[kind]
            if trigger == "manual" or not parts:
                self.problems.add(node, "reads data of a manual trigger, which has none")
                return None
            return f"inputs{dotted}"
        sid = self.ids[source]
        if kind in LLM_ROOTS:
            if parts[:1] in (["text"], ["output"]) and len(parts) == 1:
                return f"steps.{sid}.output"
            return f"steps.{sid}.json{''.join(f'.{p}' for p in parts[1:])}" if parts[:1] in (
                ["text"], ["output"]) else f"steps.{sid}.json{dotted}"  # fmt: skip
        if kind in (BASE + "executeCommand", BASE + "ssh"):
            field = {"stdout": "output", "stderr": "stderr", "exitCode": "exit_code",
                     "code": "exit_code"}.get(parts[0] if parts else "")  # fmt: skip
            if field is None or len(parts) != 1:
                self.problems.add(node, f"reads '{'.'.join(parts)}' of a command; use stdout, "
                                  "stderr or exitCode")  # fmt: skip
                return None
            return f"steps.{sid}.{field}"
        return f"steps.{sid}.json{dotted}"

    def _producer(self, name: str) -> str:
        """Through pass-through nodes (If, Switch, Filter, NoOp, Wait) to the node whose
        output they pass on."""
        seen = set()
        while self._type(self.nodes[name]) in PASSTHROUGH and name not in seen:
            seen.add(name)
            inputs = self.main_in.get(name, [])
            if not inputs:
                break
            name = inputs[0][0]
        return name
