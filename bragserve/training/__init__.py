"""Offline training of the default NLI model (``bragserve train-nli``)."""
