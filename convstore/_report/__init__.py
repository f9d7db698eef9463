"""The report: the retry and crash history drawn as one HTML page (the ``report`` extra)."""
