"""The vocabulary every layer shares: the config, the verdict, failures, waiting, redaction."""
