"""Adapters: the only code that talks to AWS. Clients are passed in, built once per process."""
