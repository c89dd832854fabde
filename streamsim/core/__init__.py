"""The vocabulary every layer shares: the plugin protocols and abilities, batches and verdicts, the
records a run emits and their catalogue, metrics, errors, data spaces and probes. Imports nothing
of streamsim above it."""
