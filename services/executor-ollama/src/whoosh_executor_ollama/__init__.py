"""WHOOSH executor for LLM agents (Ollama and OpenAI-compatible servers).

Work in progress (issue 3): the protocol layer is here; the bus wiring is not yet.
"""
