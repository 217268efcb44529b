"""WHOOSH executor for LLM agents (Ollama and OpenAI-compatible servers).

`python -m whoosh_executor_ollama` takes the work of `ollama` and `openai-compatible`
agents from their queues, streams each call's tokens as live progress and reports the
result with its usage (tokens, speeds); a per-endpoint circuit breaker keeps a failing
server out of rotation for a while.
"""
