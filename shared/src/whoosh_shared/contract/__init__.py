"""The WHOOSH contract: messages, subjects, configuration and rules every service shares.

Plain data (pydantic models) and pure functions only: nothing here opens a socket, a
file or a database, so any service, test or tool can import it without side effects.
"""
