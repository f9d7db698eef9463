"""Database operations for the command line that the store does not offer, on either backend."""
