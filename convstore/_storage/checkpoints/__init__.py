"""LangGraph checkpoints on convstore's database: their rows, statements and repository.

Plain Python types only (str, bytes, dicts): serialising LangGraph's objects is the integration's
business (`convstore.integrations.langgraph`), storing the bytes is this package's.
"""
