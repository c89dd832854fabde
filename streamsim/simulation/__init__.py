"""The discrete-event simulation: the simulator, the stream sources, wake-ups, the threat model and
the parts (gate, feedback, evaluator, updates, ...) that each own a piece of a run's state. Knows
no defense, attack or learner by name."""
