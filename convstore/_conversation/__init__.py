"""Conversations the model APIs accept: message formats, the pair-safe cap, checks and repairs."""
