"""Offline training of the models that ship inside the package: the NLI model (``bragserve train-nli``) and the
disfluency head (``bragserve train-disfluency``)."""
