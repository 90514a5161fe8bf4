"""The LSTM network, its trainer, sequences, datasets, runs and artifacts."""
