"""One module per command: load inputs, call the domain, return a report object.

No job imports another job.
"""
