"""The demo service relops.release deploys: a tiny HTTP app with a health endpoint."""

__version__ = "1.4.0"
