"""The retry side: classifying errors, backing off and retrying calls, reporting every attempt.

It knows nothing of storage: the store is one `AttemptRecorder` hook among others, and importing
this package imports no database library.
"""
