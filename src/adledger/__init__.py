"""adledger: a double-entry billing ledger for advertising platforms."""

__version__ = "0.1.0"
